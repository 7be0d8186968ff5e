-- The four-eyes threshold counts a day's orders together: the value of every order whose
-- value is known is added to its trader's total (scope 'user:<id>') and its account's total
-- (scope 'account:<id>') for its UTC day (days since the Unix epoch). Totals are decimal
-- text, updated by compare-and-set so concurrent orders add one after the other.
CREATE TABLE server_notional_days (
    scope TEXT   NOT NULL CHECK (length(scope) BETWEEN 1 AND 128),
    day   BIGINT NOT NULL,
    total TEXT   NOT NULL CHECK (length(total) BETWEEN 1 AND 64),
    PRIMARY KEY (scope, day)
);
