//! Prize pool, payout tables and the rounding of prizes to the cent.
//!
//! Everything here is pure arithmetic over [`Money`]; the tournament aggregate decides when to
//! call it. Amounts always add up exactly: whatever rounding leaves over goes to first place.

use crate::error::{DomainError, DomainResult};
use crate::money::Money;
use serde::{Deserialize, Serialize};

/// Basis points in a whole prize pool (100.00 %).
pub const FULL_POOL_BP: u32 = 10_000;

/// The share of the field paid by [`PayoutPlan::default`].
pub const DEFAULT_PAID_PERCENT: u8 = 10;

/// The share of the field paid by the flatter, selectable standard plan.
pub const WIDE_PAID_PERCENT: u8 = 15;

/// The highest `paid_percent` a standard plan accepts: paying more than half the field would
/// leave min-cashes below the buy-in.
pub const MAX_PAID_PERCENT: u8 = 50;

/// What the prize pool holds and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrizePool {
    /// Entries × prize contribution + rebuys + add-ons − bounties, as computed by the caller.
    pub collected: Money,
    /// The amount the house promised (zero when nothing was guaranteed).
    pub guarantee: Money,
    /// What the house adds to reach the guarantee (zero when collections cover it).
    pub overlay: Money,
    /// What will be paid out: the larger of collected and guarantee.
    pub total: Money,
}

/// Tops the collected money up to the guarantee, showing the difference as overlay.
pub fn prize_pool(collected: Money, guarantee: Option<Money>) -> PrizePool {
    let guarantee = guarantee.unwrap_or(Money::ZERO).max(Money::ZERO);
    let overlay = (guarantee - collected).max(Money::ZERO);
    PrizePool {
        collected,
        guarantee,
        overlay,
        total: collected + overlay,
    }
}

/// How a tournament's prize pool is split between places.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PayoutPlan {
    /// Pays about `paid_percent` of the field on the house curve (see [`shares_bp`]).
    Standard { paid_percent: u8 },
    /// A table set by the venue: one share per place, best first, in basis points summing to
    /// 10000 and never increasing.
    Custom { shares_bp: Vec<u32> },
}

impl Default for PayoutPlan {
    fn default() -> Self {
        PayoutPlan::Standard {
            paid_percent: DEFAULT_PAID_PERCENT,
        }
    }
}

/// How many places a field of `field` entries pays under `plan`.
///
/// Standard plans pay `paid_percent` of the field, rounded to the nearest place, but never fewer
/// than the small-field minimum: 1 place up to 5 entries, 2 places for 6–9 entries, 3 places from
/// 10 entries (a single table would otherwise pay one place, which players find harsh). The
/// percentage is clamped to 1–50 here; [`shares_bp`] refuses values outside that range.
/// Custom plans pay their listed places, but never more places than there are entries.
pub fn places_paid(field: u32, plan: &PayoutPlan) -> u32 {
    if field == 0 {
        return 0;
    }
    match plan {
        PayoutPlan::Standard { paid_percent } => {
            let percent = u64::from((*paid_percent).clamp(1, MAX_PAID_PERCENT));
            let by_percent = (u64::from(field) * percent + 50) / 100;
            let small_field_minimum = match field {
                0..=5 => 1,
                6..=9 => 2,
                _ => 3,
            };
            let places = by_percent.max(small_field_minimum).min(u64::from(field));
            u32::try_from(places).unwrap_or(field)
        }
        PayoutPlan::Custom { shares_bp } => {
            u32::try_from(shares_bp.len()).map_or(field, |listed| listed.min(field))
        }
    }
}

/// The share of the pool for each paid place, best first, in basis points summing to 10000.
///
/// The standard curve is harmonic (Zipf): place `i` gets a weight of `1/i`, so first place gets
/// the most, second half of that, third a third, and so on. It gives 54.55/27.27/18.18 for three
/// places and about 35/18/12/9/7/6/5/4/4 for nine. Because the weights fall slowly, the last paid
/// place still gets back at least one entry's contribution for fields up to 3,000 entries at 10 %
/// paid and 1,900 at 15 % (beyond that, whole basis points are too coarse for the smallest
/// shares). Rounding to basis points uses largest remainders, ties to the better place, so the
/// shares stay non-increasing.
///
/// A custom table is validated; if the field is smaller than the table, the places nobody can
/// reach are dropped and their shares spread over the paid places in proportion.
pub fn shares_bp(field: u32, plan: &PayoutPlan) -> DomainResult<Vec<u32>> {
    if field == 0 {
        return Err(DomainError::invalid(
            "there are no entries, so there is nothing to pay out",
        ));
    }
    let places = usize::try_from(places_paid(field, plan))
        .map_err(|_| DomainError::invalid("too many places paid"))?;
    match plan {
        PayoutPlan::Standard { paid_percent } => {
            if *paid_percent == 0 || *paid_percent > MAX_PAID_PERCENT {
                return Err(DomainError::invalid(format!(
                    "a standard payout plan pays between 1% and {MAX_PAID_PERCENT}% of the field, \
                     not {paid_percent}%"
                )));
            }
            // Weights 1/i scaled by the least common multiple would overflow; scaling every
            // weight by a large fixed factor keeps the integer ratios exact enough (1e-12).
            const SCALE: u128 = 1_000_000_000_000;
            let weights: Vec<u128> = (1..=places as u128).map(|i| SCALE / i).collect();
            Ok(apportion_bp(&weights))
        }
        PayoutPlan::Custom { shares_bp } => {
            validate_shares(shares_bp)?;
            let kept = shares_bp.get(..places).unwrap_or(shares_bp);
            if kept.len() == shares_bp.len() {
                return Ok(shares_bp.clone());
            }
            let weights: Vec<u128> = kept.iter().map(|&bp| u128::from(bp)).collect();
            Ok(apportion_bp(&weights))
        }
    }
}

/// Checks a payout table: at least one place, every share positive, best place first, shares
/// never increasing and summing to exactly 10000 basis points.
pub fn validate_shares(shares_bp: &[u32]) -> DomainResult<()> {
    if shares_bp.is_empty() {
        return Err(DomainError::invalid(
            "a payout table must pay at least one place",
        ));
    }
    for (index, pair) in shares_bp.windows(2).enumerate() {
        if let [better, worse] = pair {
            if worse > better {
                return Err(DomainError::invalid(format!(
                    "place {} is given {} but place {} only {}: a lower place cannot pay more \
                     than a higher one",
                    index + 2,
                    format_bp(*worse),
                    index + 1,
                    format_bp(*better),
                )));
            }
        }
    }
    if let Some(place) = shares_bp.iter().position(|&bp| bp == 0) {
        return Err(DomainError::invalid(format!(
            "place {} is given 0%: leave unpaid places out of the table",
            place + 1
        )));
    }
    let total: u64 = shares_bp.iter().map(|&bp| u64::from(bp)).sum();
    if total != u64::from(FULL_POOL_BP) {
        return Err(DomainError::invalid(format!(
            "the payout table adds up to {} instead of 100.00%",
            format_bp_u64(total)
        )));
    }
    Ok(())
}

/// Splits `total` by `shares_bp`, each amount rounded down to a multiple of `rounding_unit`
/// (one cent means no rounding); what rounding leaves over goes to first place, so the amounts
/// always sum exactly to `total` and never increase from one place to the next.
pub fn distribute(
    total: Money,
    shares_bp: &[u32],
    rounding_unit: Money,
) -> DomainResult<Vec<Money>> {
    validate_shares(shares_bp)?;
    if total < Money::ZERO {
        return Err(DomainError::invalid(format!(
            "a prize pool cannot be negative ({})",
            format_money(total)
        )));
    }
    if rounding_unit <= Money::ZERO {
        return Err(DomainError::invalid(
            "prizes must be rounded to a positive amount (use 0.01 for no rounding)",
        ));
    }
    let pool = i128::from(total.as_cents());
    let unit = i128::from(rounding_unit.as_cents());
    // Rounding every place down keeps the amounts ordered (floor is monotone); giving the whole
    // remainder to first place keeps them ordered too, since first was already the largest.
    let mut amounts: Vec<i64> = shares_bp
        .iter()
        .map(|&bp| {
            let exact = pool * i128::from(bp) / i128::from(FULL_POOL_BP);
            i64::try_from(exact / unit * unit).unwrap_or(0)
        })
        .collect();
    let allotted: i64 = amounts.iter().sum();
    if let Some(first) = amounts.first_mut() {
        *first += total.as_cents() - allotted;
    }
    Ok(amounts.into_iter().map(Money::cents).collect())
}

/// Pays players who share places the average of those places; odd cents go to the better-placed
/// amounts first, so the sum is exact and the result never increases.
///
/// Players knocked out on the same hand (during hand-for-hand, on the same round of hands)
/// finish in order of their stacks at the start of the hand; only those who started it with
/// equal stacks tie and share (TDA 2024 rule 20, Simultaneous Eliminations). `amounts` are the
/// prizes of the shared places, best first.
pub fn split_tied(amounts: &[Money]) -> Vec<Money> {
    let Ok(count) = i64::try_from(amounts.len()) else {
        return amounts.to_vec();
    };
    if count == 0 {
        return Vec::new();
    }
    let sum: i64 = amounts.iter().map(|m| m.as_cents()).sum();
    let each = sum.div_euclid(count);
    let odd_cents = sum.rem_euclid(count);
    (0..count)
        .map(|place| Money::cents(each + i64::from(place < odd_cents)))
        .collect()
}

/// Shares of 10000 basis points in proportion to `weights` (non-increasing), by largest
/// remainder with ties to the better place.
fn apportion_bp(weights: &[u128]) -> Vec<u32> {
    let total_weight: u128 = weights.iter().sum::<u128>().max(1);
    let full = u128::from(FULL_POOL_BP);
    let mut shares: Vec<u32> = weights
        .iter()
        .map(|w| u32::try_from(full * w / total_weight).unwrap_or(0))
        .collect();
    let allotted: u32 = shares.iter().sum();
    let mut by_remainder: Vec<usize> = (0..weights.len()).collect();
    by_remainder.sort_by_key(|&i| {
        let w = weights.get(i).copied().unwrap_or(0);
        (std::cmp::Reverse(full * w % total_weight), i)
    });
    for &i in by_remainder
        .iter()
        .take(usize::try_from(FULL_POOL_BP.saturating_sub(allotted)).unwrap_or(0))
    {
        if let Some(share) = shares.get_mut(i) {
            *share += 1;
        }
    }
    shares
}

/// An amount as a floor manager writes it: `1234.50`, `-3.05`.
pub(crate) fn format_money(amount: Money) -> String {
    let cents = amount.as_cents();
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

fn format_bp(bp: u32) -> String {
    format_bp_u64(u64::from(bp))
}

fn format_bp_u64(bp: u64) -> String {
    format!("{}.{:02}%", bp / 100, bp % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn standard(paid_percent: u8) -> PayoutPlan {
        PayoutPlan::Standard { paid_percent }
    }

    #[test]
    fn prize_pool_without_guarantee_is_what_was_collected() {
        let pool = prize_pool(Money::units(4_500), None);
        assert_eq!(pool.total, Money::units(4_500));
        assert_eq!(pool.overlay, Money::ZERO);
        assert_eq!(pool.guarantee, Money::ZERO);
    }

    #[test]
    fn prize_pool_below_guarantee_is_topped_up_with_overlay() {
        let pool = prize_pool(Money::units(7_200), Some(Money::units(10_000)));
        assert_eq!(pool.total, Money::units(10_000));
        assert_eq!(pool.overlay, Money::units(2_800));
        assert_eq!(pool.collected, Money::units(7_200));
    }

    #[test]
    fn prize_pool_above_guarantee_has_no_overlay() {
        let pool = prize_pool(Money::units(12_000), Some(Money::units(10_000)));
        assert_eq!(pool.total, Money::units(12_000));
        assert_eq!(pool.overlay, Money::ZERO);
    }

    #[test]
    fn small_fields_follow_the_minimum_places_rule() {
        let plan = PayoutPlan::default();
        let expected = [
            (0, 0),
            (1, 1),
            (2, 1),
            (5, 1),
            (6, 2),
            (9, 2),
            (10, 3),
            (30, 3),
            (35, 4),
            (100, 10),
            (1_000, 100),
        ];
        for (field, places) in expected {
            assert_eq!(places_paid(field, &plan), places, "field of {field}");
        }
    }

    #[test]
    fn wider_plan_pays_fifteen_percent_of_the_field() {
        assert_eq!(places_paid(100, &standard(WIDE_PAID_PERCENT)), 15);
        assert_eq!(places_paid(200, &standard(WIDE_PAID_PERCENT)), 30);
    }

    #[test]
    fn custom_plan_never_pays_more_places_than_entries() {
        let plan = PayoutPlan::Custom {
            shares_bp: vec![5_000, 3_000, 2_000],
        };
        assert_eq!(places_paid(2, &plan), 2);
        assert_eq!(places_paid(50, &plan), 3);
    }

    #[test]
    fn standard_curve_for_three_places_is_harmonic() {
        assert_eq!(
            shares_bp(10, &PayoutPlan::default()).unwrap(),
            vec![5_455, 2_727, 1_818]
        );
    }

    #[test]
    fn standard_plan_with_zero_percent_is_refused() {
        let err = shares_bp(100, &standard(0)).unwrap_err();
        assert!(err.to_string().contains("not 0%"), "{err}");
    }

    #[test]
    fn standard_plan_paying_most_of_the_field_is_refused() {
        assert!(shares_bp(100, &standard(60)).is_err());
    }

    #[test]
    fn empty_field_has_nothing_to_pay() {
        assert!(shares_bp(0, &PayoutPlan::default()).is_err());
    }

    #[test]
    fn custom_table_not_summing_to_hundred_percent_is_refused() {
        let plan = PayoutPlan::Custom {
            shares_bp: vec![5_000, 3_000, 1_000],
        };
        let err = shares_bp(20, &plan).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the payout table adds up to 90.00% instead of 100.00%"
        );
    }

    #[test]
    fn custom_table_paying_a_lower_place_more_is_refused() {
        let plan = PayoutPlan::Custom {
            shares_bp: vec![5_000, 2_000, 3_000],
        };
        let err = shares_bp(20, &plan).unwrap_err();
        assert!(err.to_string().contains("place 3 is given 30.00%"), "{err}");
    }

    #[test]
    fn custom_table_with_a_zero_share_is_refused() {
        assert!(validate_shares(&[10_000, 0]).is_err());
    }

    #[test]
    fn custom_table_with_no_places_is_refused() {
        assert!(validate_shares(&[]).is_err());
    }

    #[test]
    fn custom_table_larger_than_field_spreads_unreachable_shares_in_proportion() {
        let plan = PayoutPlan::Custom {
            shares_bp: vec![4_000, 2_000, 2_000, 2_000],
        };
        assert_eq!(shares_bp(2, &plan).unwrap(), vec![6_667, 3_333]);
    }

    #[test]
    fn last_paid_place_returns_at_least_one_contribution() {
        for plan in [standard(DEFAULT_PAID_PERCENT), standard(WIDE_PAID_PERCENT)] {
            let largest_field = if plan == standard(DEFAULT_PAID_PERCENT) {
                3_000
            } else {
                1_900
            };
            for field in (1..=largest_field).step_by(7) {
                let shares = shares_bp(field, &plan).unwrap();
                let last = u64::from(*shares.last().unwrap());
                // Pool = field × contribution, so last place ≥ one contribution ⇔ last × field ≥ 10000.
                assert!(last * u64::from(field) >= 10_000, "{plan:?}, field {field}");
            }
        }
    }

    #[test]
    fn distribute_rounds_to_the_unit_and_gives_the_remainder_to_first() {
        let amounts =
            distribute(Money::units(1_234), &[5_000, 3_000, 2_000], Money::units(5)).unwrap();
        // 617, 370.20, 246.80 → 615, 370, 245; the 4.00 left over goes to first place.
        assert_eq!(
            amounts,
            vec![Money::units(619), Money::units(370), Money::units(245)]
        );
    }

    #[test]
    fn distribute_of_less_than_one_unit_pays_it_all_to_first() {
        let amounts = distribute(Money::units(3), &[6_000, 4_000], Money::units(5)).unwrap();
        assert_eq!(amounts, vec![Money::units(3), Money::ZERO]);
    }

    #[test]
    fn distribute_of_nothing_pays_nothing() {
        let amounts = distribute(Money::ZERO, &[6_000, 4_000], Money::units(5)).unwrap();
        assert_eq!(amounts, vec![Money::ZERO, Money::ZERO]);
    }

    #[test]
    fn distribute_to_one_place_pays_the_whole_pool() {
        let amounts = distribute(Money::cents(100_003), &[10_000], Money::units(5)).unwrap();
        assert_eq!(amounts, vec![Money::cents(100_003)]);
    }

    #[test]
    fn distribute_refuses_a_zero_rounding_unit() {
        assert!(distribute(Money::units(100), &[10_000], Money::ZERO).is_err());
    }

    #[test]
    fn distribute_refuses_a_negative_pool() {
        assert!(distribute(Money::units(-1), &[10_000], Money::units(1)).is_err());
    }

    #[test]
    fn tied_places_share_evenly_with_odd_cents_to_the_better_place() {
        let split = split_tied(&[
            Money::cents(30_001),
            Money::cents(20_000),
            Money::cents(10_000),
        ]);
        assert_eq!(
            split,
            vec![
                Money::cents(20_001),
                Money::cents(20_000),
                Money::cents(20_000)
            ]
        );
        let split = split_tied(&[Money::cents(101), Money::cents(100), Money::cents(0)]);
        assert_eq!(
            split,
            vec![Money::cents(67), Money::cents(67), Money::cents(67)]
        );
    }

    #[test]
    fn no_tied_places_means_nothing_to_split() {
        assert!(split_tied(&[]).is_empty());
    }

    #[test]
    fn payout_plan_serialises_with_a_type_tag() {
        let json = serde_json::to_string(&PayoutPlan::default()).unwrap();
        assert_eq!(json, r#"{"type":"standard","paid_percent":10}"#);
    }

    fn arbitrary_shares() -> impl Strategy<Value = Vec<u32>> {
        prop::collection::vec(1u32..1_000, 1..40).prop_map(|raw| {
            let mut weights: Vec<u128> = raw.into_iter().map(u128::from).collect();
            weights.sort_unstable_by(|a, b| b.cmp(a));
            apportion_bp(&weights)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn distribute_sums_exactly_and_never_increases(
            total in 0i64..2_000_000_000,
            shares in arbitrary_shares(),
            unit in prop::sample::select(vec![1i64, 100, 500, 2_500, 10_000]),
        ) {
            prop_assume!(shares.iter().all(|&bp| bp > 0));
            let amounts = distribute(Money::cents(total), &shares, Money::cents(unit)).unwrap();
            prop_assert_eq!(amounts.iter().copied().sum::<Money>(), Money::cents(total));
            prop_assert!(amounts.windows(2).all(|w| w[0] >= w[1]));
            prop_assert!(amounts.iter().skip(1).all(|a| a.as_cents() % unit == 0));
        }

        #[test]
        fn standard_shares_are_valid_for_any_field(field in 1u32..5_000, wide in any::<bool>()) {
            let percent = if wide { WIDE_PAID_PERCENT } else { DEFAULT_PAID_PERCENT };
            let plan = standard(percent);
            let shares = shares_bp(field, &plan).unwrap();
            prop_assert_eq!(shares.len() as u32, places_paid(field, &plan));
            prop_assert!(validate_shares(&shares).is_ok());
        }

        #[test]
        fn split_tied_keeps_the_sum(amounts in prop::collection::vec(0i64..1_000_000, 0..9)) {
            let amounts: Vec<Money> = amounts.into_iter().map(Money::cents).collect();
            let split = split_tied(&amounts);
            prop_assert_eq!(split.iter().copied().sum::<Money>(), amounts.iter().copied().sum::<Money>());
            prop_assert!(split.windows(2).all(|w| w[0] >= w[1] && w[0].as_cents() - w[1].as_cents() <= 1));
        }
    }
}
