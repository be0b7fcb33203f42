//! How long an exact ICM takes at a final table (9 players) and at the largest field a deal
//! is usually discussed for (15). The appliance is a Raspberry Pi 5: keep 15 players well under
//! a second so a deal screen stays responsive.

use criterion::{criterion_group, criterion_main, Criterion};
use pvm_core::icm::icm_equities;
use pvm_core::{Chips, Money};
use std::hint::black_box;

fn final_table(players: u64) -> (Vec<Chips>, Vec<Money>) {
    let stacks = (1..=players).map(|i| 50_000 + i * 37_500).collect();
    let prizes = (1..=players as i64)
        .rev()
        .map(|i| Money::units(i * i * 100))
        .collect();
    (stacks, prizes)
}

fn icm(c: &mut Criterion) {
    for players in [9, 15] {
        let (stacks, prizes) = final_table(players);
        c.bench_function(&format!("icm_equities_{players}_players"), |b| {
            b.iter(|| icm_equities(black_box(&stacks), black_box(&prizes)))
        });
    }
}

criterion_group!(benches, icm);
criterion_main!(benches);
