//! What the SQL stores of finsec-auth share: the constructor, pool accessor, `Clone` and
//! `Debug` of a store that is a pool and nothing else.

/// Implements `new`, `pool`, `Clone` and `Debug` (backend and pool, nothing else) for a
/// store `$name<DB: Backend>` whose only field is `pool: Pool<DB>`. `Backend`, `Pool` and
/// `fmt` must be in scope where it is used.
macro_rules! pool_wrapper {
    ($name:ident) => {
        impl<DB: Backend> $name<DB> {
            /// A store on `pool`.
            #[must_use]
            pub fn new(pool: Pool<DB>) -> Self {
                Self { pool }
            }

            /// The pool.
            pub fn pool(&self) -> &Pool<DB> {
                &self.pool
            }
        }

        impl<DB: Backend> Clone for $name<DB> {
            fn clone(&self) -> Self {
                Self {
                    pool: self.pool.clone(),
                }
            }
        }

        impl<DB: Backend> fmt::Debug for $name<DB> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("backend", &DB::LABEL)
                    .field("pool", &self.pool)
                    .finish()
            }
        }
    };
}

pub(crate) use pool_wrapper;
