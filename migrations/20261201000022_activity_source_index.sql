-- The timeline records what an event said that changed no row (an invoice paid, a trial
-- ending) once per event: `activity::record` looks for an entry of the same customer, kind and
-- source first. Without this index that look scanned all of the customer's entries, on the
-- apply path of every such event.
CREATE INDEX activity_source_idx ON activity (customer_pk, kind, source);
