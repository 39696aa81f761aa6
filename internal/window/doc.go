// Package window keeps the sliding event-time windows the evaluator's rules
// read: per keyspace (a grouping of the rules, quality.Dim values) and per
// key, fixed-width buckets of counters from which Values computes the
// quality.Values of any period within the keyspace's span.
//
// The Store is not safe for concurrent use: the engine serializes Apply,
// Values, Expire and Stats. It never reads a clock: event times come from
// the events, and "now" is Expire's parameter.
//
// # Keys
//
// A Spec groups by one or more dimensions. The values of an event are:
// waba = WABAID, phone_number = PhoneNumberID, channel = Channel, country =
// Recipient.CountryCode, and template, use_case, campaign = the fields of
// its attribution (see below). Template status and quality events key the
// template by Template.Name when they carry no attribution. Phone quality
// events have a phone number only when ingest knew the number's id. An event
// missing a value for any dimension of a spec is not counted in that spec
// (account events have no template, inbound messages no country when the
// sender's number is not a phone...); it still counts in the others.
//
// A key's id is its value for a one-dimension spec, and otherwise its values
// in the spec's order joined by '|', with '|' and '\' escaped by '\'
// ("waba1|order\|update"). Keys lists ids with their labels (dimension name
// to value).
//
// # What an event counts
//
//	status sent/delivered/read/failed/accepted/deferred   its status counter (other statuses: Ignored)
//	status failed                                         failures by class (Error.Class; "other" without an error
//	                                                      or for an unknown class) and by code (not when the code is
//	                                                      0, as in e-mail failures)
//	inbound                                               Inbound
//	opt-out verdict (OptOut set, not Resumed), any kind   OptOuts (keyword, button, user_preferences, 131050,
//	                                                      SMS STOP, e-mail unsubscribes); resumes count nothing
//	phone_quality                                         latest QualityEvent (Quality.Event), MessagingTier (Quality.CurrentLimit)
//	capability                                            latest MessagingTier (Capability.MessagingLimit)
//	template_status / template_quality                    latest TemplateStatus (Template.Event) / TemplateQuality (Template.NewQuality)
//	account_update                                        latest AccountEvent, AccountBanState
//	account_alert, unknown, empty state values            nothing (Ignored)
//
// Attempts is Sent plus the failed statuses whose message had no sent
// status seen; Reached is Delivered plus the read statuses whose message
// had no delivered status seen. "Seen" means remembered by the dedupe
// memory when the status is applied, so order matters within these bounds:
// a failed applied before its message's sent counts as an attempt and the
// sent then counts again (one message, two attempts); a read before its
// delivered likewise counts in Reached twice; a delivered before its sent
// counts in Reached, and the sent then in Attempts, but gives no latency.
// Statuses of one message normally reach one partition in order (ingest
// keys by WABA), so this is rare; rates are clamped to 1 for it.
//
// # Attribution of opt-outs and replies
//
// A sent or accepted status (the first status of a message: accepted for
// SMS and e-mail) with a recipient pseudonym and an attribution records it
// for its (phone number id, pseudonym) pair, unless the pair already has one
// from a later send (event time): the pair's attribution is that of the
// last message sent to the user. Later statuses (delivered, read, failed)
// do not record. An opt-out verdict without its own attribution
// (an inbound keyword or button, a user_preferences event, a 131050 or
// 21610 failure of a message sent without attribution) and an inbound
// message without one take the attribution recorded for their pair, so that
// "opt-outs per template" and "replies per template" count what followed
// each template. An event with its own attribution keeps it. Pairs are
// forgotten after Options.AttributionTTL of event time (against the Expire
// clock) and bounded by MaxAttribution (the least recently recorded of the 8
// slots a new pair may take makes room). For e-mail the phone number id is
// empty: the pair is (empty, address pseudonym).
//
// # Dedupe
//
// Counted once across all keyspaces, before any is updated: statuses dedupe
// on (message id, status), other events on their id (events without one are
// not deduplicated). Entries are 64-bit hashes (61 bits of id hash and the
// status) with the first copy's event time; that time is also the sent time
// of the sent→delivered latency. An entry is forgotten once Expire's clock
// passes its time plus DedupeHorizon (a replay after that counts again), or
// earlier when MaxDedupe is reached (the oldest of the 8 slots a new entry
// may take makes room). Late, future and ignored events are not recorded.
//
// # Watermarks and lateness
//
// Each partition's watermark is the greatest event time applied from it
// (late and future events excluded; duplicates included). An event older
// than its partition's watermark minus AllowedLateness is dropped (Late). An
// event within the lateness goes into its own, older bucket, as long as that
// bucket is within Span of its key's newest bucket; otherwise that keyspace
// does not count it (Stale; this happens when a key gets events from
// partitions far apart in time). With MaxFutureSkew set, an event whose time
// is more than that after its receive time is refused (Future) and moves no
// watermark, so that one wrong clock cannot make every later event late.
//
// # Buckets and periods
//
// A key keeps ceil(Span/Resolution)+1 buckets ending at its newest bucket
// (bucket i covers [i·Resolution, (i+1)·Resolution) of Unix time). Values
// over [from, to) sums every kept bucket that overlaps the period: periods
// are bucket-aligned, so a period starting or ending inside a bucket
// includes all of it (a 15 m window ending at 12:00:30 at 1 m resolution
// covers 11:45:00 to 12:01:00). Rules whose windows are multiples of the
// resolution and evaluated on bucket boundaries see exact windows.
//
// A Period answers the same for one period per key that moves forward with
// the evaluation clock (a rule's window, or its baseline): it keeps each
// key's sum of sealed buckets between calls and decodes only the buckets
// that entered or left (finding them from where the last call left off),
// and keeps its answer while the period covers the same buckets and the key
// counted nothing since (or those buckets were all sealed), which is what
// makes evaluating every key at every instant cheap. AppendKeyRefs lists keys by slot for it, without labels.
//
// The sent→delivered latency histogram has fixed bins (upper bounds 1 s,
// 2 s, 5 s, 10 s, 20 s, 30 s, 1 m, 2 m, 5 m, 10 m, 30 m, 1 h, then +inf); a
// sample belongs to the delivered status's bucket (negative latencies, from
// clock skew, count as 0). LatencyP50 and LatencyP90 interpolate linearly
// inside the bin holding the quantile's rank (the first bin starts at 0;
// the +inf bin answers 3600). Rates follow quality.go: Reached/Attempts,
// Read/Reached, Failed/Attempts, OptOuts/Reached, each clamped to [0, 1]
// and 0 when the denominator is 0.
//
// # Latest state
//
// State strings are kept per key with their event times, not in buckets:
// Values returns, for each, the last value with event time at or before
// to (the latest event time wins; among equal times, the last applied). A
// repeated value is not stored again. Expire forgets changes older than Span
// before its clock except the last of each field, which is the state from
// then on: a key's state lasts as long as the key.
//
// # Expiry and bounds
//
// Expire(now) drops keys with no event for IdleTTL (event time against now:
// a key's last event time is the greatest it applied), forgets dedupe and
// attribution entries past their horizons, trims state history, and seals
// dense buckets that can only be reached through the slow path anymore. It
// visits every key: call it about once per evaluation, not per event.
// Beyond MaxKeys keys in a keyspace, new keys are refused (Refused, counted
// per keyspace); existing keys keep counting.
//
// # Memory
//
// The recent buckets of a key (its newest ones, as many as the allowed
// lateness spans, 2 to 4) are dense arrays of uint32 counters (128 bytes),
// taken from a per-keyspace pool while they hold data; older ones are sealed
// into one byte string per key of varint records holding only non-zero
// counters (8 to 30 bytes a bucket). An event later than the dense buckets
// rewrites its sealed record (the slow path). Keys are found through an
// open-addressing table of 128-bit hashes of their values, so Apply builds
// no key strings; a key's id is built once, when the key is created. The
// dedupe and attribution memories are set-associative tables of 16 and 24
// bytes an entry, sized by their bounds and, on Linux, backed by 2 MiB pages
// when the kernel allows. In steady state Apply allocates nothing. Measured
// (memory_test.go): 1.0 KB a key at 500 events/s over 10,000 numbers and six
// keyspaces, 1.5 KB at 2,000 events/s, 2.3 KB for a key busy in every bucket.
//
// # Deciding once for several stores
//
// Apply decides an event (watermark, dedupe, attribution: Decision) and
// counts it in the store's keyspaces. Decide and ApplyDecision split the
// two, so that stores holding different keyspaces count the same decided
// events, as one store would: a backtest decides each event once, on a
// store without keyspaces, and its parallel engines apply the decisions.
// Stores made by NewSharing share the deciding store's hash seeds and take
// the key hashes from its decisions. DecideBatch reads the dedupe table
// and the recipients for a whole batch before deciding it, so that its
// cache misses overlap. Reserve sizes the dedupe and attribution memories
// for a known number of events at once.
//
// # Following a dimension
//
// A Spec's Follow names a dimension outside its By whose latest value (by
// event time) each key keeps, read with Followed: the engine counts the
// numbers of a WABA in the phone-number keyspace, each under the WABA of
// its latest event, rather than keeping a [waba, phone_number] keyspace.
//
// # Outcomes and stats
//
// Apply returns what it did with the event (Outcome; String gives the label
// the evaluator's metrics use). Stats returns keys, dense buckets and sealed
// bytes per keyspace, refused, stale and expired counts, outcome counts,
// dedupe and attribution sizes and an estimate of the bytes held, without
// visiting keys or entries.
package window
