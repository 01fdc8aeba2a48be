//! Counter aggregates declared once: [`counters!`](crate::counters) writes
//! the struct, its zero, the merge of per-CPU copies and the difference of
//! two readings from one list of fields, so no field can be forgotten in one
//! of them (a forgotten field in a hand-written difference would show the
//! cumulative value as the interval's).

/// A value that only grows: zeroed, summed over CPUs, differenced between
/// two readings.
pub trait Counter: Copy {
    const ZERO: Self;
    /// Adds `other` (another CPU's copy).
    fn merge(&mut self, other: &Self);
    /// What was added since `earlier`; saturating, so a reset reads as 0.
    fn since(&self, earlier: &Self) -> Self;
    /// Carries what user space keeps since attach from the previous reading
    /// `earlier` into this one, which has just ended reading interval
    /// `epoch`. Only the extremes keep anything: the programs write their
    /// per-interval slots alone, so a traced call pays for one range, not
    /// two.
    #[inline(always)]
    fn carry(&mut self, _earlier: &Self, _epoch: u64) {}
    /// Makes this reading's interval `epoch` also hold what the reading
    /// `earlier` held of its interval `earlier_epoch`: two intervals shown
    /// as one (a run's last, cut short by its end, with the one before).
    /// Only the extremes keep anything per interval.
    #[inline(always)]
    fn fold_epoch(&mut self, _earlier: &Self, _earlier_epoch: u64, _epoch: u64) {}
}

impl Counter for u64 {
    const ZERO: u64 = 0;

    #[inline(always)]
    fn merge(&mut self, other: &u64) {
        *self = self.wrapping_add(*other);
    }

    #[inline(always)]
    fn since(&self, earlier: &u64) -> u64 {
        self.saturating_sub(*earlier)
    }
}

impl<const N: usize> Counter for [u64; N] {
    const ZERO: [u64; N] = [0; N];

    #[inline(always)]
    fn merge(&mut self, other: &[u64; N]) {
        for (a, b) in self.iter_mut().zip(other.iter()) {
            a.merge(b);
        }
    }

    #[inline(always)]
    fn since(&self, earlier: &[u64; N]) -> [u64; N] {
        let mut out = [0; N];
        for ((o, a), b) in out.iter_mut().zip(self.iter()).zip(earlier.iter()) {
            *o = a.since(b);
        }
        out
    }
}

/// Declares a `#[repr(C)]` struct of [`Counter`] fields with `ZERO`,
/// `FIELDS` (the names, in order), `merge` and `since`.
#[macro_export]
macro_rules! counters {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl $name {
            pub const ZERO: $name = $name {
                $( $field: <$ty as $crate::counter::Counter>::ZERO, )*
            };

            /// The field names in declaration order.
            pub const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Adds another copy (another CPU's) field by field.
            #[inline(always)]
            pub fn merge(&mut self, other: &$name) {
                $( $crate::counter::Counter::merge(&mut self.$field, &other.$field); )*
            }

            /// Carries the since-attach figures user space keeps from the
            /// previous reading, field by field (see [`Counter::carry`]).
            ///
            /// [`Counter::carry`]: $crate::counter::Counter::carry
            #[inline(always)]
            pub fn carry(&mut self, earlier: &$name, epoch: u64) {
                $( $crate::counter::Counter::carry(&mut self.$field, &earlier.$field, epoch); )*
            }

            /// Folds `earlier`'s interval into this one's, field by field
            /// (see [`Counter::fold_epoch`]).
            ///
            /// [`Counter::fold_epoch`]: $crate::counter::Counter::fold_epoch
            pub fn fold_epoch(&mut self, earlier: &$name, earlier_epoch: u64, epoch: u64) {
                $( $crate::counter::Counter::fold_epoch(&mut self.$field, &earlier.$field, earlier_epoch, epoch); )*
            }

            /// What was counted since `earlier`, field by field.
            #[inline(always)]
            pub fn since(&self, earlier: &$name) -> $name {
                $name {
                    $( $field: $crate::counter::Counter::since(&self.$field, &earlier.$field), )*
                }
            }
        }
    };
}

/// The smallest and largest value since attach. Merged over CPUs by min and
/// max; it has no difference (a later reading's range covers the earlier).
///
/// All-zero bytes are the empty range: the kernel zero-fills new map entries
/// (a per-CPU entry on every CPU but the inserting one), so a stored minimum
/// of 0 would read as a real one. The minimum is kept complemented.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// `!min`: 0 while empty (the minimum is then `u64::MAX`).
    not_min: u64,
    max: u64,
}

impl Range {
    pub const EMPTY: Range = Range { not_min: 0, max: 0 };

    /// The range holding exactly `min..=max`.
    pub const fn new(min: u64, max: u64) -> Range {
        Range { not_min: !min, max }
    }

    #[inline(always)]
    pub fn extend(&mut self, v: u64) {
        if !v > self.not_min {
            self.not_min = !v;
        }
        if v > self.max {
            self.max = v;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.min() > self.max
    }

    /// `u64::MAX` when empty.
    pub fn min(&self) -> u64 {
        !self.not_min
    }

    pub fn max(&self) -> u64 {
        self.max
    }
}

impl Counter for Range {
    const ZERO: Range = Range::EMPTY;

    fn merge(&mut self, other: &Range) {
        self.not_min = self.not_min.max(other.not_min);
        self.max = self.max.max(other.max);
    }

    fn since(&self, _earlier: &Range) -> Range {
        *self
    }
}

/// The smallest and largest value of one reading interval (an epoch, which
/// user space advances at each reading). Two slots, used by epoch parity: a
/// program writes slot `epoch & 1`, restarting it when it holds an older
/// epoch, while user space reads the other, finished one.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochRange {
    pub epoch: u64,
    pub range: Range,
}

impl EpochRange {
    #[inline(always)]
    pub fn extend(&mut self, epoch: u64, v: u64) {
        if self.epoch != epoch {
            self.epoch = epoch;
            self.range = Range::new(v, v);
        } else {
            self.range.extend(v);
        }
    }
}

impl Counter for EpochRange {
    const ZERO: EpochRange = EpochRange {
        epoch: 0,
        range: Range::EMPTY,
    };

    /// CPUs may hold different epochs in the same slot: the newest wins.
    fn merge(&mut self, other: &EpochRange) {
        if other.epoch > self.epoch {
            *self = *other;
        } else if other.epoch == self.epoch {
            self.range.merge(&other.range);
        }
    }

    fn since(&self, _earlier: &EpochRange) -> EpochRange {
        *self
    }
}

/// Both slots of an [`EpochRange`] and the [`Range`] since attach. The
/// programs write only the slots; user space, which reads every interval
/// as it ends, folds each into `total` ([`Counter::carry`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extremes {
    pub total: Range,
    pub by_epoch: [EpochRange; 2],
}

impl Extremes {
    #[inline(always)]
    pub fn extend(&mut self, epoch: u64, v: u64) {
        self.by_epoch[(epoch & 1) as usize].extend(epoch, v);
    }

    /// The range of epoch `epoch`, empty if no value was seen in it.
    pub fn of_epoch(&self, epoch: u64) -> Range {
        let slot = &self.by_epoch[(epoch & 1) as usize];
        if slot.epoch == epoch {
            slot.range
        } else {
            Range::EMPTY
        }
    }
}

impl Counter for Extremes {
    const ZERO: Extremes = Extremes {
        total: Range::EMPTY,
        by_epoch: [EpochRange::ZERO; 2],
    };

    fn merge(&mut self, other: &Extremes) {
        self.total.merge(&other.total);
        self.by_epoch[0].merge(&other.by_epoch[0]);
        self.by_epoch[1].merge(&other.by_epoch[1]);
    }

    fn since(&self, _earlier: &Extremes) -> Extremes {
        *self
    }

    /// The interval just ended and the one before it: a program that read
    /// the epoch just before user space advanced it may still have written
    /// the older slot after the previous reading.
    fn carry(&mut self, earlier: &Extremes, epoch: u64) {
        let mut total = earlier.total;
        total.merge(&self.total);
        total.merge(&self.of_epoch(epoch));
        total.merge(&self.of_epoch(epoch.wrapping_sub(1)));
        self.total = total;
    }

    fn fold_epoch(&mut self, earlier: &Extremes, earlier_epoch: u64, epoch: u64) {
        // The older slot as read then, and as read now (a late write, see
        // `carry`).
        let mut range = self.of_epoch(epoch);
        range.merge(&earlier.of_epoch(earlier_epoch));
        range.merge(&self.of_epoch(earlier_epoch));
        self.by_epoch[(epoch & 1) as usize] = EpochRange { epoch, range };
    }
}

/// One stall: its length, when it ended (the kernel's monotonic clock), its
/// time off a CPU, the parts of that preempted and asleep in futex outside
/// a traced call (a lock, helper threads: a pool's parked worker is not in
/// a stall), and the kinds of call made during it (bit = kind).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Stall {
    pub ns: u64,
    pub at_ns: u64,
    pub off_cpu_ns: u64,
    pub preempted_ns: u64,
    pub futex_ns: u64,
    pub kinds: u64,
}

/// [`Stall`] with the reading interval it happened in.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EpochStall {
    pub epoch: u64,
    pub stall: Stall,
}

/// The longest stall since attach and in each of the two latest reading
/// intervals (slots by parity, and `total` kept by user space, as in
/// [`Extremes`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongestStall {
    pub total: Stall,
    pub by_epoch: [EpochStall; 2],
}

impl LongestStall {
    #[inline(always)]
    pub fn offer(&mut self, epoch: u64, stall: Stall) {
        let slot = &mut self.by_epoch[(epoch & 1) as usize];
        if slot.epoch != epoch || stall.ns > slot.stall.ns {
            *slot = EpochStall { epoch, stall };
        }
    }

    /// The longest stall of epoch `epoch` (ns 0 if none).
    pub fn of_epoch(&self, epoch: u64) -> Stall {
        let slot = &self.by_epoch[(epoch & 1) as usize];
        if slot.epoch == epoch {
            slot.stall
        } else {
            Stall::default()
        }
    }
}

impl Counter for LongestStall {
    const ZERO: LongestStall = LongestStall {
        total: Stall {
            ns: 0,
            at_ns: 0,
            off_cpu_ns: 0,
            preempted_ns: 0,
            futex_ns: 0,
            kinds: 0,
        },
        by_epoch: [EpochStall {
            epoch: 0,
            stall: Stall {
                ns: 0,
                at_ns: 0,
                off_cpu_ns: 0,
                preempted_ns: 0,
                futex_ns: 0,
                kinds: 0,
            },
        }; 2],
    };

    /// The longer wins; per slot, the newer epoch first.
    fn merge(&mut self, other: &LongestStall) {
        if other.total.ns > self.total.ns {
            self.total = other.total;
        }
        for (mine, theirs) in self.by_epoch.iter_mut().zip(other.by_epoch.iter()) {
            if theirs.epoch > mine.epoch
                || (theirs.epoch == mine.epoch && theirs.stall.ns > mine.stall.ns)
            {
                *mine = *theirs;
            }
        }
    }

    fn since(&self, _earlier: &LongestStall) -> LongestStall {
        *self
    }

    /// As for [`Extremes`]: the interval just ended and the one before.
    fn carry(&mut self, earlier: &LongestStall, epoch: u64) {
        for stall in [
            earlier.total,
            self.of_epoch(epoch),
            self.of_epoch(epoch.wrapping_sub(1)),
        ] {
            if stall.ns > self.total.ns {
                self.total = stall;
            }
        }
    }

    fn fold_epoch(&mut self, earlier: &LongestStall, earlier_epoch: u64, epoch: u64) {
        let mut stall = self.of_epoch(epoch);
        for older in [
            earlier.of_epoch(earlier_epoch),
            self.of_epoch(earlier_epoch),
        ] {
            if older.ns > stall.ns {
                stall = older;
            }
        }
        self.by_epoch[(epoch & 1) as usize] = EpochStall { epoch, stall };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_bytes_are_an_empty_range() {
        // What the kernel puts in a new entry's other CPUs' copies.
        // SAFETY: Range is two u64s: all-zero bytes are a valid value.
        let zeroed: Range = unsafe { core::mem::zeroed() };
        assert!(zeroed.is_empty());
        assert_eq!(zeroed, Range::EMPTY);
        let mut seen = Range::EMPTY;
        seen.extend(200);
        seen.extend(900);
        let mut merged = zeroed;
        merged.merge(&seen);
        assert_eq!((merged.min(), merged.max()), (200, 900));
        let mut extended = zeroed;
        extended.extend(0);
        assert_eq!(
            (extended.min(), extended.max(), extended.is_empty()),
            (0, 0, false)
        );
    }

    #[test]
    fn extremes_keep_each_epoch_and_user_space_carries_the_total() {
        let mut cpu0 = Extremes::ZERO;
        let mut cpu1 = Extremes::ZERO;
        cpu0.extend(1, 50);
        cpu0.extend(1, 7);
        cpu1.extend(1, 90);
        cpu0.extend(2, 3); // epoch 2 starts on cpu0 only
        let mut all = cpu0;
        all.merge(&cpu1);
        assert_eq!(all.of_epoch(1), Range::new(7, 90));
        assert_eq!(all.of_epoch(2), Range::new(3, 3));
        assert!(all.of_epoch(3).is_empty(), "slot 1 holds epoch 1, not 3");
        assert!(all.total.is_empty(), "the programs never write the total");
        // Epoch 3 reuses slot 1, forgetting epoch 1: a reading of each
        // interval as it ends keeps it in the total.
        let mut reading1 = all;
        reading1.carry(&Extremes::ZERO, 1);
        assert_eq!(reading1.total, Range::new(7, 90));
        cpu1.extend(3, 4);
        assert_eq!(cpu1.of_epoch(3), Range::new(4, 4));
        assert!(cpu1.of_epoch(1).is_empty());
        let mut reading3 = cpu0;
        reading3.merge(&cpu1);
        reading3.carry(&reading1, 3);
        assert_eq!(reading3.total, Range::new(3, 90));
    }

    #[test]
    fn a_value_written_to_the_older_slot_after_its_reading_is_carried() {
        let mut kernel = Extremes::ZERO;
        kernel.extend(4, 10);
        let mut reading4 = kernel;
        reading4.carry(&Extremes::ZERO, 4);
        // A program read epoch 4 just before user space advanced it.
        kernel.extend(4, 1_000);
        kernel.extend(5, 20);
        let mut reading5 = kernel;
        reading5.carry(&reading4, 5);
        assert_eq!(reading5.total, Range::new(10, 1_000));
    }

    /// Two intervals shown as one: the later reading's interval holds the
    /// earlier's extremes, as read then and as written late, and its own.
    #[test]
    fn an_interval_folded_into_the_next_keeps_both_s_extremes() {
        let mut kernel = Extremes::ZERO;
        kernel.extend(4, 10);
        kernel.extend(4, 500);
        let reading4 = kernel;
        kernel.extend(4, 1_000); // late, after reading 4
        kernel.extend(5, 20);
        let mut reading5 = kernel;
        reading5.fold_epoch(&reading4, 4, 5);
        assert_eq!(reading5.of_epoch(5), Range::new(10, 1_000));
        // Epoch 6 has overwritten epoch 4's slot: reading 4's copy stands.
        kernel.extend(6, 3);
        let mut reading5 = kernel;
        reading5.fold_epoch(&reading4, 4, 5);
        assert_eq!(reading5.of_epoch(5), Range::new(10, 500));

        let stall = |ns| Stall {
            ns,
            ..Stall::default()
        };
        let mut kernel = LongestStall::ZERO;
        kernel.offer(4, stall(80));
        let reading4 = kernel;
        kernel.offer(5, stall(30));
        let mut reading5 = kernel;
        reading5.fold_epoch(&reading4, 4, 5);
        assert_eq!(reading5.of_epoch(5).ns, 80);
    }

    #[test]
    fn the_longest_stall_wins_per_epoch_and_overall() {
        let stall = |ns| Stall {
            ns,
            at_ns: ns,
            off_cpu_ns: 0,
            preempted_ns: 0,
            futex_ns: 0,
            kinds: 0,
        };
        let mut cpu0 = LongestStall::ZERO;
        let mut cpu1 = LongestStall::ZERO;
        cpu0.offer(1, stall(50));
        cpu1.offer(1, stall(120));
        cpu0.offer(2, stall(60));
        let mut all = cpu0;
        all.merge(&cpu1);
        assert_eq!(all.of_epoch(1).ns, 120);
        assert_eq!(all.of_epoch(2).ns, 60);
        assert_eq!(all.of_epoch(3).ns, 0);
        let mut reading2 = all;
        reading2.carry(&LongestStall::ZERO, 2);
        assert_eq!(reading2.total.ns, 120);
        cpu0.offer(3, stall(70));
        cpu0.offer(4, stall(80));
        let mut reading4 = cpu0;
        reading4.carry(&reading2, 4);
        assert_eq!(reading4.total.ns, 120, "epoch 1 is gone from the slots");
    }
}
