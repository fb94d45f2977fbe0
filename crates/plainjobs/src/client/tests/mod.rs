//! Tests of the client that span its modules.

mod coalesced;
