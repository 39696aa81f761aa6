// Package route is the routing model of the control API: which WhatsApp
// number, or which other channel, each use case sends through right now,
// and every way that changes.
//
// Three things make it up:
//
//   - [File], the routes file: per use case a pool of numbers with roles
//     (primary, high_volume, reserve), weights and rates, a strategy and a
//     channel fallback chain; per portfolio a messaging limit; the ramp
//     schedule; the automation guards. It is static: it changes with a
//     deploy.
//   - [State], what changed at run time: number states (active, degraded,
//     paused, blocked), throttles, locks, failovers, channel fallbacks,
//     ramps, and the automation's memory (idempotency keys, cooldowns, the
//     hourly budget, pending restores) and the audit log. It changes only
//     through [State.Apply] of a [Command], which is deterministic: the
//     same commands applied in the same order to the same file give the
//     same state, whatever the clock of the process applying them (the
//     command carries its time). That is what lets several control
//     processes share one Kafka log of commands and agree.
//   - [Table], an immutable view of file and state built after each
//     command, that [Picker] reads without locks to answer pick requests
//     under their per-number rate budgets and daily recipient budgets.
package route
