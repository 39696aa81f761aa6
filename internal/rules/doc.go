// Package rules loads alerting rules files and compiles their CEL
// conditions, once, into programs the engine evaluates per key.
//
// A rules file is strict YAML (an unknown key is an error):
//
//	groups:
//	  - name: delivery              # letters, digits, _ . -; unique across all files
//	    interval: 10s               # required, >= 1s
//	    rules:
//	      - alert: DeliveryRateDrop # required, [A-Za-z_][A-Za-z0-9_]*, unique in the group
//	        by: [phone_number]      # required: quality.Dims, no repeats
//	        window: 15m             # required, whole seconds, at most 7d, not shorter than interval
//	        resolution: 1m          # optional bucket width, see below
//	        baseline: previous_1h   # optional: previous_<duration> or same_time_last_week
//	        when: attempts >= 200 && delivery_rate < baseline.delivery_rate * 0.8
//	        resolve_when: delivery_rate >= baseline.delivery_rate * 0.9
//	        min_volume: {attempts: 200}
//	        for: 2m
//	        keep_firing_for: 5m
//	        labels: {severity: critical}
//	        annotations:
//	          summary: "Delivery on {{ .phone_number }} fell to {{ pct .values.delivery_rate }}"
//	        actions:
//	          - throttle: {phone_number: "{{ .phone_number }}", rate: 40/s}
//
// Durations are Go durations plus d (24h) and w (7d). Resolution defaults
// to the largest whole number of seconds that divides the window and the
// baseline (the previous_<d> period, or the week of same_time_last_week)
// and is at most max(window/15, interval): 15m -> 1m, 1h -> 4m, 1m at a
// 10s interval -> 10s. An explicit resolution must be whole seconds,
// divide the window and the baseline, and give at most 1440 buckets.
//
// min_volume maps count metrics to minimums. Below any of them the rule
// has no evidence either way: When counts as false, so the alert neither
// fires nor stays pending, and Rule.Conditions reports the alert as
// resolvable, so that a firing alert whose traffic went away (often moved
// by its own action) resolves after keep_firing_for instead of firing on
// traffic that is gone. See Rule.Guard.
//
// Labels are static strings; they may not be alertname, start with __, or
// name one of the rule's key dimensions.
//
// # Conditions
//
// when and resolve_when are CEL expressions that must be bool; they are
// parsed and type-checked at load, so a misspelt metric fails the load
// with its position. They see:
//
//   - every field of quality.Values by its json name: sent, delivered,
//     read, failed, accepted, deferred, attempts, reached, opt_outs,
//     inbound, latency_samples, numbers_active, numbers_degraded (int);
//     delivery_rate, read_rate, failure_rate, opt_out_rate, latency_p50,
//     latency_p90 (double; latencies in seconds); quality_event,
//     messaging_tier, template_status, template_quality, account_event,
//     account_ban_state (string); failures_by_code (map(int, int));
//     failures_by_class (map(string, int));
//   - baseline, the same fields over the baseline period (a typed object:
//     baseline.delivry_rate is a load error), and has_baseline, whether
//     that period had any data. Either is a load error in a rule without
//     baseline:;
//   - labels (map(string, string)): the key's dimensions, the rule's
//     labels and alertname.
//
// Helpers, on top of CEL's standard library and the math extension
// (math.abs, math.greatest, ...):
//
//   - pct_change(cur, base) double: (cur-base)/base, 0 when base is 0;
//     int or double arguments.
//   - ratio(a, b) double: a/b, 0 when b is 0; int or double arguments.
//   - code(n) int: failures_by_code[n], 0 when absent; baseline.code(n)
//     reads the baseline.
//   - class(name) int: failures_by_class[name], 0 when absent; a literal
//     name that is not an event error class is a load error;
//     baseline.class(name) reads the baseline.
//
// Numbers compare across int and double (failure_rate > 0), but CEL
// arithmetic does not mix them: double(sent) * 0.5.
//
// Every evaluation is bounded by CostLimit and by its context.
//
// # Annotations and actions
//
// Annotation values and action params are text/template templates over:
// .alertname, .labels (the alert's labels), each key dimension by name
// ({{ .phone_number }}), .values and .baseline (metrics by json name) and
// .has_baseline; with the functions pct (0.834 -> "83.4%"), humanize
// (12345 -> "12.35k"; a time.Duration -> "1h30m"), humanizeDuration
// (seconds: 0.34 -> "340ms") and the builtins (printf, index, ...). One
// failure code is {{ index .values.failures_by_code 131048 }} (0 when
// absent): .values.failures_by_code.131048 is not template syntax.
// References to unknown fields, metrics, non-key dimensions or labels the
// rule cannot have are load errors.
//
// actions is a list of single-key mappings, type -> params. Every action
// needs at least one of its targets; literal values are checked at load,
// templated ones when Render renders them:
//
//	failover          targets use_case, phone_number; optional to (standby number id)
//	throttle          targets phone_number, waba, use_case, campaign, template;
//	                  required rate: <n>/s, <n>/m or <n>/h
//	pause             targets campaign, template, use_case, phone_number, waba;
//	                  optional for: a duration (default: until resumed)
//	fallback_channel  targets use_case, campaign, template, phone_number, waba;
//	                  required channel: sms, email or push
//	notify_senders    targets use_case, campaign, template, phone_number, waba;
//	                  optional message (default: the summary)
//
// # Errors
//
// Load reports every problem in every file at once, as Problems, each at
// path:line:col with the source line and a caret; errors inside a CEL
// expression or a template point inside the YAML scalar.
package rules
