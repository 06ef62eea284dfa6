-- A subscription state applied one at a time keeps its plans (issue 23, the steady stream's
-- tail).
--
-- `sync_subscription_event` runs ~20 statements (its own, `sync_subscription_state`'s,
-- `apply_subscription_state`'s, `settle_group`'s, `activate_default_plan`'s, the plan rows'
-- timeline trigger's and the foreign keys' checks). PL/pgSQL keeps a statement's plan for the
-- session only while the generic plan's estimate is no worse than the custom ones'. Two of
-- them name the held statuses (`status = ANY (held_statuses)`): the rivals' update in
-- `settle_group` and the held plans' read in `apply_subscription_state`. A custom plan knows
-- those statuses, and once most of a store's plan rows have ended (a customer's history) it
-- estimates fewer rows than the generic plan does, so both were planned afresh on every call
-- (~0.16 ms a state), from whenever the statistics came to say so: in a steady benchmark
-- run, on a tenth of the calls; on that run's store afterwards, on all of them.
--
-- Every statement here looks rows up by key (a customer's plans, one subscription, one plan
-- row), which a generic plan does as well as a custom one, so the function plans them
-- generically: the SET holds for everything it runs, and ends with it. The two functions
-- that hold those two statements plan generically themselves too, for their other callers:
-- the daemon calls `apply_subscription_state` itself (a state the guard let through on the
-- scheduled-downgrade path) and `settle_group` for a local plan's change (store::plans).
--
-- Measured (`pgbench`, a subscription's five states in their order, one statement each, on
-- the steady benchmark's store): 4.2-4.5 ms a life before, 2.9-3.2 after.
ALTER FUNCTION sync_subscription_event(
    text, bigint, text, text, text, text, text, text, boolean, text, boolean, text, text,
    timestamptz, timestamptz, boolean, timestamptz, timestamptz, timestamptz, timestamptz,
    integer, timestamptz, bigint, timestamptz, integer, text, boolean, boolean)
    SET plan_cache_mode = force_generic_plan;

ALTER FUNCTION apply_subscription_state(
    text, bigint, text, text, boolean, text, boolean, text, text, timestamptz, timestamptz,
    boolean, timestamptz, timestamptz, timestamptz, timestamptz, integer, timestamptz, bigint,
    timestamptz, boolean, boolean)
    SET plan_cache_mode = force_generic_plan;

ALTER FUNCTION settle_group(bigint, text, bigint, timestamptz, text, boolean, boolean)
    SET plan_cache_mode = force_generic_plan;
