//! How a customer search is asked of the trigram indexes: by its rare three-character parts,
//! chosen with the trigram frequencies ANALYZE measured (cached a few minutes per process).
//! The choice changes speed, never results.

use sqlx::PgConnection;

/// How common trigrams are among the customers: the share of customers whose id, name or
/// email has it, as ANALYZE last measured (migration 14's statistics object).
#[derive(Debug, Default)]
pub(super) struct TrigramFreqs {
    freqs: std::collections::HashMap<String, f32>,
    /// Trigrams ANALYZE did not keep are rarer than the rarest it kept.
    untracked: f32,
}

impl TrigramFreqs {
    fn of(&self, trigram: &str) -> f32 {
        self.freqs.get(trigram).copied().unwrap_or(self.untracked)
    }
}

/// The statistics change only with ANALYZE: read them again every few minutes.
const FREQS_FOR: std::time::Duration = std::time::Duration::from_secs(300);

type CachedFreqs = Option<(std::time::Instant, std::sync::Arc<TrigramFreqs>)>;
static FREQS: std::sync::Mutex<CachedFreqs> = std::sync::Mutex::new(None);

/// The trigram frequencies, `None` before the first ANALYZE (then a search is looked up
/// whole, and the statistics are asked again next time). Cached per process: stale ones,
/// or another database's (tests), only change speed, never results.
pub(super) async fn trigram_freqs(
    conn: &mut PgConnection,
) -> Result<Option<std::sync::Arc<TrigramFreqs>>, sqlx::Error> {
    if let Some((at, freqs)) = &*FREQS.lock().unwrap_or_else(|e| e.into_inner())
        && at.elapsed() < FREQS_FOR
    {
        return Ok(Some(freqs.clone()));
    }
    type Elems = (Option<Vec<String>>, Option<Vec<f32>>);
    let row: Option<Elems> = sqlx::query_as(
        "SELECT most_common_elems::text::text[], most_common_elem_freqs
         FROM pg_stats_ext_exprs
         WHERE statistics_name = 'customers_search_trgm_stats'
           AND statistics_schemaname = current_schema()",
    )
    .fetch_optional(conn)
    .await?;
    let freqs = match row {
        Some((Some(elems), Some(freqs))) if freqs.len() == elems.len() + 3 => {
            // After one frequency per element: the least and greatest of them, and nulls.
            let untracked = freqs[elems.len()] / 2.0;
            let freqs = elems.into_iter().zip(freqs).collect();
            Some(std::sync::Arc::new(TrigramFreqs { freqs, untracked }))
        }
        _ => None,
    };
    if let Some(freqs) = &freqs {
        *FREQS.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((std::time::Instant::now(), freqs.clone()));
    }
    Ok(freqs)
}

/// A trigram in more than this share of the customers is never asked of the index: its
/// posting list is long and narrows little.
const COMMON: f32 = 0.5;
/// The search is looked up by rare parts only when they are expected to match at most this
/// share of the customers; else the index is asked for the whole search (after the walk,
/// which such a search usually fills).
const RARE_ENOUGH: f32 = 0.01;
/// At most this many parts, and this many of one word...
const MAX_PARTS: usize = 4;
const PER_WORD: usize = 3;
/// ...where a word's second and third part must narrow to this share of the customers.
const EXTRA: f32 = 0.1;

/// Three-character substrings of `search` (lower case) whose trigrams are rare, for the
/// index to look up instead of the whole search, and the share of customers the search is
/// expected to match (1 when nothing is known); no parts when there are none or they would
/// match many customers. Every part is a substring of the search, so whatever contains the
/// search contains every part: the choice changes speed, never results.
///
/// pg_trgm splits text into words at every character that is not a letter or digit, and
/// pads each word (`"  ab"`, `"ab "`). Of `search`, a part `abc` (all letters or digits)
/// stands for the trigram `abc`, `-ab` for `"  a"` and `" ab"` (a word starts), `ab-` for
/// `"ab "` (a word ends). Other parts and non-ASCII text are not used. Parts in different
/// words of the search are taken to narrow independently; parts of one word may be mostly
/// the same customers (`kow`, `owa`), so the expected share is that of the word's rarest
/// part, multiplied across words.
pub(super) fn rare_parts<'s>(search: &'s str, freqs: &TrigramFreqs) -> (Vec<&'s str>, f32) {
    let bytes = search.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || !b.is_ascii();
    // The word each byte is in: words are counted by the separators before them.
    let mut word_of = Vec::with_capacity(bytes.len());
    let mut words = 0;
    for &b in bytes {
        if !word(b) {
            words += 1;
        }
        word_of.push(words);
    }
    // (start, word, share of customers it narrows to)
    let mut candidates: Vec<(usize, usize, f32)> = Vec::new();
    for start in 0..bytes.len().saturating_sub(2) {
        let w = &bytes[start..start + 3];
        if !w.is_ascii() {
            continue;
        }
        let alnum = |i: usize| w[i].is_ascii_alphanumeric();
        let (c0, c1, c2) = (w[0] as char, w[1] as char, w[2] as char);
        let (trigrams, in_word) = match (alnum(0), alnum(1), alnum(2)) {
            (true, true, true) => (vec![format!("{c0}{c1}{c2}")], start),
            (false, true, true) => (vec![format!("  {c1}"), format!(" {c1}{c2}")], start + 1),
            (true, true, false) => (vec![format!("{c0}{c1} ")], start),
            _ => continue,
        };
        let shares: Vec<f32> = trigrams.iter().map(|t| freqs.of(t)).collect();
        if shares.iter().any(|&share| share > COMMON) {
            continue;
        }
        let narrows = shares.into_iter().fold(1.0, f32::min);
        candidates.push((start, word_of[in_word], narrows));
    }
    candidates.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)));
    // Per word its rarest part, then (if rare too) the next rarest, and once more: `991`
    // and `919` of `9919` are far fewer customers together than either alone.
    let mut chosen: Vec<(usize, usize, f32)> = Vec::new();
    for round in 0..PER_WORD {
        for &(start, word, narrows) in &candidates {
            let same_word: Vec<usize> =
                chosen.iter().filter(|c| c.1 == word).map(|c| c.0).collect();
            let again = chosen
                .iter()
                .any(|c| bytes[c.0..c.0 + 3] == bytes[start..start + 3]);
            if same_word.len() == round && (round == 0 || narrows <= EXTRA) && !again {
                chosen.push((start, word, narrows));
            }
        }
    }
    chosen.truncate(MAX_PARTS);
    let mut expected = 1.0;
    for (i, &(_, word, narrows)) in chosen.iter().enumerate() {
        if !chosen[..i].iter().any(|c| c.1 == word) {
            expected *= narrows;
        }
    }
    if chosen.is_empty() || expected > RARE_ENOUGH {
        return (Vec::new(), expected);
    }
    let parts = chosen
        .into_iter()
        .map(|(start, _, _)| &search[start..start + 3])
        .collect();
    (parts, expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frequencies shaped like the bench's million customers: `user_N`, `customerN@`.
    fn freqs() -> TrigramFreqs {
        let common = [
            ("use", 1.0),
            ("ser", 1.0),
            ("er ", 1.0),
            ("cus", 1.0),
            ("ust", 1.0),
            ("sto", 1.0),
            ("tom", 1.0),
            ("ome", 1.0),
            ("mer", 1.0),
            ("er1", 0.11),
            ("  1", 0.21),
            (" 12", 0.022),
            ("  4", 0.21),
            (" 42", 0.021),
            ("kow", 0.05),
            ("owa", 0.05),
            ("wal", 0.05),
            ("als", 0.05),
            ("lsk", 0.05),
            ("ski", 0.05),
            ("ki ", 0.05),
        ];
        TrigramFreqs {
            freqs: common.iter().map(|&(t, f)| (t.to_owned(), f)).collect(),
            untracked: 0.0025,
        }
    }

    #[test]
    fn rare_parts_skip_common_trigrams() {
        let parts = rare_parts("user_123456", &freqs()).0;
        assert_eq!(parts, ["123", "234", "345"]);
        let parts = rare_parts("customer123456@", &freqs()).0;
        assert!(
            parts
                .iter()
                .all(|p| !["cus", "ust", "tom", "mer"].contains(p)),
            "{parts:?}"
        );
        assert!(!parts.is_empty());
    }

    #[test]
    fn rare_parts_span_words() {
        // `-42` stands for `" 42"` (a word starts), rarer than any part of `kowalski`.
        let parts = rare_parts("kowalski-42", &freqs()).0;
        assert_eq!(parts[0], "-42");
        assert!(parts.contains(&"kow"), "{parts:?}");
    }

    #[test]
    fn broad_or_short_searches_have_no_rare_parts() {
        assert!(rare_parts("kowalski", &freqs()).0.is_empty(), "5% match");
        assert!(rare_parts("user_1", &freqs()).0.is_empty());
        assert!(rare_parts("ab", &freqs()).0.is_empty());
        assert!(rare_parts("ééé", &freqs()).0.is_empty());
        assert!(rare_parts("", &freqs()).0.is_empty());
    }

    #[test]
    fn a_part_is_asked_once() {
        let parts = rare_parts("nobody_9999", &freqs()).0;
        let mut unique = parts.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), parts.len(), "{parts:?}");
    }

    #[test]
    fn rare_parts_are_substrings_of_the_search() {
        for search in ["a_b%c\\d-123_x", "zürich-9876", "x@y.test 42"] {
            for part in rare_parts(search, &freqs()).0 {
                assert!(search.contains(part), "{search}: {part}");
            }
        }
    }
}
