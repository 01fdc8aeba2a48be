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
