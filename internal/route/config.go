package route

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"vigia/internal/rules"
)

// Roles of a number in a use case's pool.
const (
	RolePrimary    = "primary"     // in rotation
	RoleHighVolume = "high_volume" // in rotation, usually with a larger weight
	RoleReserve    = "reserve"     // out of rotation: failover target
)

// Strategies of a use case: how pick spreads messages over the numbers
// in rotation.
const (
	StrategyRoundRobin = "round_robin"
	StrategyWeighted   = "weighted"
	StrategyOrdered    = "ordered" // the first eligible number in the order written
)

// Channels. WhatsApp is always first in a chain.
const (
	ChannelWhatsApp = "whatsapp"
	ChannelSMS      = "sms"
	ChannelEmail    = "email"
	ChannelPush     = "push"
)

// Messaging limits of a business portfolio (unique recipients per rolling
// 24 hours), Meta's tiers since October 2025.
var messagingLimits = map[string]int{"250": 250, "2000": 2000, "2k": 2000, "10000": 10000, "10k": 10000,
	"100000": 100000, "100k": 100000, "unlimited": 0}

// File is a routes file: the pools, strategies, budgets and channel
// chains of every use case. It is static configuration; what changes at
// run time (states, throttles, locks, failovers) is the State.
type File struct {
	// Ramp is the schedule of a new or recovering number: its rate and
	// daily budgets are the given fraction of its tier from After on,
	// counted from when the ramp started. Empty: no ramp.
	Ramp []RampStep `yaml:"ramp"`
	// QualityFactors scale a portfolio's daily budget by the quality
	// rating of its numbers (GREEN, YELLOW, RED, UNKNOWN).
	QualityFactors map[string]float64 `yaml:"quality_factors"`
	Portfolios     []Portfolio        `yaml:"portfolios"`
	UseCases       []UseCase          `yaml:"use_cases"`
	Automation     Automation         `yaml:"automation"`

	// Hash identifies the file's content: replicas compare it, since the
	// same log applied to different files gives different states.
	Hash string `yaml:"-"`
	// Path is where the file was read from, for messages.
	Path string `yaml:"-"`

	numbers   map[string]*Number
	useCases  map[string]*UseCase
	portfolio map[string]*Portfolio
}

// Automation holds the guards on automatic changes. They are part of the
// routes file, not of a process's settings, because every replica must
// apply the same guards to the same log to reach the same state.
type Automation struct {
	// DryRun (shadow mode) records what automation would have done
	// without doing it.
	DryRun bool `yaml:"dry_run"`
	// Cooldown is the least time between two automatic changes of one
	// target (a number or a use case).
	Cooldown Duration `yaml:"cooldown"`
	// HourlyBudget bounds automatic changes over the last hour, across
	// all targets.
	HourlyBudget int `yaml:"hourly_budget"`
	// RestoreAfter is how long a target must stay healthy after its alert
	// resolved before automation undoes what the alert did.
	RestoreAfter Duration `yaml:"restore_after"`
	// PlatformFraction: when at least this fraction of all numbers is
	// degraded, paused or blocked, a failover moves traffic to the next
	// channel instead of onto another number (a platform-wide problem
	// would only make failovers flap between numbers).
	PlatformFraction float64 `yaml:"platform_fraction"`
	// AuditSize bounds the audit entries kept in the state (the full
	// history is in the actions topic and ClickHouse).
	AuditSize int `yaml:"audit_size"`
}

// RampStep is one step of a ramp schedule.
type RampStep struct {
	After    Duration `yaml:"after"`
	Fraction float64  `yaml:"fraction"`
}

// Portfolio is a Meta business portfolio: its numbers share its messaging
// limit (unique recipients per 24 h).
type Portfolio struct {
	ID             string `yaml:"id"`
	MessagingLimit string `yaml:"messaging_limit"` // 250, 2000, 10000, 100000 or unlimited
	Quality        string `yaml:"quality"`         // GREEN (default), YELLOW, RED, UNKNOWN

	limit int // 0: unlimited
}

// UseCase is one kind of traffic (sales, support, billing) and how it is
// routed.
type UseCase struct {
	Name     string   `yaml:"name"`
	Strategy string   `yaml:"strategy"`
	Channels []string `yaml:"channels"` // fallback chain; whatsapp first
	Numbers  []Number `yaml:"numbers"`
}

// Number is one WhatsApp phone number in a use case's pool. The same
// number may serve several use cases; its state and budgets are shared.
type Number struct {
	ID        string `yaml:"id"` // phone_number_id
	WABA      string `yaml:"waba"`
	Portfolio string `yaml:"portfolio"`
	Role      string `yaml:"role"`
	Weight    int    `yaml:"weight"`
	Rate      Rate   `yaml:"rate"` // messages per second; default 80/s, Meta's default throughput

	line int
}

// Rate is a rate in messages per second, written like 80/s, 300/m, 1000/h.
type Rate float64

// UnmarshalYAML parses a rate.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	v, err := rules.ParseRate(n.Value)
	if err != nil {
		// A TypeError (not a plain error) keeps the decoder going, so that
		// every problem is reported, and carries the line (test fix).
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: rate: %v", n.Line, err)}}
	}
	*r = Rate(v)
	return nil
}

// Duration is a duration written like 90s, 15m, 1h, 1d.
type Duration time.Duration

// UnmarshalYAML parses a duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := rules.ParseDuration(n.Value)
	if err != nil {
		// As for Rate: keep decoding, and say where (test fix).
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = Duration(v)
	return nil
}

// DefaultRate is a number's throughput unless its entry says otherwise:
// Meta's default per-number limit.
const DefaultRate = Rate(80)

// LoadFile reads and validates a routes file. Every problem is reported,
// each with file:line.
func LoadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse validates a routes file's content; path is for messages.
func Parse(path string, data []byte) (*File, error) {
	var f File
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF: validate it as the empty routes
	// file it is, so that the message says what is missing (test fix).
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sum := sha256.Sum256(data)
	f.Hash, f.Path = hex.EncodeToString(sum[:8]), path
	lines := numberLines(&root)
	for i := range f.UseCases {
		for j := range f.UseCases[i].Numbers {
			f.UseCases[i].Numbers[j].line = lines[[2]int{i, j}]
		}
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// numberLines finds the line of every use_cases[i].numbers[j] entry, so
// that problems name it.
func numberLines(root *yaml.Node) map[[2]int]int {
	out := map[[2]int]int{}
	if len(root.Content) == 0 {
		return out
	}
	doc := root.Content[0]
	ucs := mapValue(doc, "use_cases")
	if ucs == nil {
		return out
	}
	for i, uc := range ucs.Content {
		nums := mapValue(uc, "numbers")
		if nums == nil {
			continue
		}
		for j, n := range nums.Content {
			out[[2]int{i, j}] = n.Line
		}
	}
	return out
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func (f *File) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(f.Path+": "+format, args...)) }

	// Factors the file leaves out keep their defaults: with only
	// {RED: 0.1} given, a GREEN portfolio was refused as "want GREEN, ...,
	// got GREEN" (test fix).
	if f.QualityFactors == nil {
		f.QualityFactors = map[string]float64{}
	}
	for q, v := range map[string]float64{"GREEN": 1, "YELLOW": 0.5, "RED": 0.2, "UNKNOWN": 0.5} {
		if _, ok := f.QualityFactors[q]; !ok {
			f.QualityFactors[q] = v
		}
	}
	// Sorted, so that the problems come in a stable order (test fix).
	for _, q := range slices.Sorted(maps.Keys(f.QualityFactors)) {
		v := f.QualityFactors[q]
		if !slices.Contains([]string{"GREEN", "YELLOW", "RED", "UNKNOWN"}, q) {
			bad("quality_factors: unknown quality %q (GREEN, YELLOW, RED, UNKNOWN)", q)
		}
		if v < 0 || v > 1 {
			bad("quality_factors.%s: want a fraction in [0, 1], got %g", q, v)
		}
	}
	for i, s := range f.Ramp {
		if s.Fraction <= 0 || s.Fraction > 1 {
			bad("ramp[%d].fraction: want a fraction in (0, 1], got %g", i, s.Fraction)
		}
		if i > 0 && s.After <= f.Ramp[i-1].After {
			bad("ramp[%d].after: steps must be in increasing order of after", i)
		}
	}
	if len(f.Ramp) > 0 && f.Ramp[0].After != 0 {
		bad("ramp[0].after: the first step starts at 0")
	}

	a := &f.Automation
	if a.Cooldown == 0 {
		a.Cooldown = Duration(10 * time.Minute)
	}
	if a.HourlyBudget == 0 {
		a.HourlyBudget = 20
	}
	if a.RestoreAfter == 0 {
		a.RestoreAfter = Duration(15 * time.Minute)
	}
	if a.PlatformFraction == 0 {
		a.PlatformFraction = 0.5
	}
	if a.AuditSize == 0 {
		a.AuditSize = 1000
	}
	if a.Cooldown < 0 || a.RestoreAfter < 0 {
		bad("automation: cooldown and restore_after must not be negative")
	}
	if a.HourlyBudget < 0 {
		bad("automation.hourly_budget: want a positive count, got %d", a.HourlyBudget)
	}
	if a.PlatformFraction <= 0 || a.PlatformFraction > 1 {
		bad("automation.platform_fraction: want a fraction in (0, 1], got %g", a.PlatformFraction)
	}
	if a.AuditSize < 0 || a.AuditSize > 100000 {
		bad("automation.audit_size: want 1 to 100000, got %d", a.AuditSize)
	}

	f.portfolio = map[string]*Portfolio{}
	for i := range f.Portfolios {
		p := &f.Portfolios[i]
		if p.ID == "" {
			bad("portfolios[%d]: id is required", i)
			continue
		}
		if f.portfolio[p.ID] != nil {
			bad("portfolios[%d]: duplicate id %q", i, p.ID)
		}
		f.portfolio[p.ID] = p
		if p.MessagingLimit == "" {
			p.MessagingLimit = "unlimited"
		}
		limit, ok := messagingLimits[strings.ToLower(p.MessagingLimit)]
		if !ok {
			bad("portfolios[%d].messaging_limit: want 250, 2000, 10000, 100000 or unlimited, got %q", i, p.MessagingLimit)
		}
		p.limit = limit
		if p.Quality == "" {
			p.Quality = "GREEN"
		}
		if _, ok := f.QualityFactors[p.Quality]; !ok {
			bad("portfolios[%d].quality: want GREEN, YELLOW, RED or UNKNOWN, got %q", i, p.Quality)
		}
	}

	f.useCases = map[string]*UseCase{}
	f.numbers = map[string]*Number{}
	if len(f.UseCases) == 0 {
		bad("use_cases: at least one use case is required")
	}
	for i := range f.UseCases {
		uc := &f.UseCases[i]
		where := fmt.Sprintf("use_cases[%d]", i)
		if !validName(uc.Name) {
			bad("%s.name: want letters, digits, '-' or '_', got %q", where, uc.Name)
		} else if f.useCases[uc.Name] != nil {
			bad("%s: duplicate use case %q", where, uc.Name)
		}
		f.useCases[uc.Name] = uc
		if uc.Strategy == "" {
			uc.Strategy = StrategyWeighted
		}
		if !slices.Contains([]string{StrategyRoundRobin, StrategyWeighted, StrategyOrdered}, uc.Strategy) {
			bad("%s.strategy: want round_robin, weighted or ordered, got %q", where, uc.Strategy)
		}
		if len(uc.Channels) == 0 {
			uc.Channels = []string{ChannelWhatsApp}
		}
		if uc.Channels[0] != ChannelWhatsApp {
			bad("%s.channels: the chain starts with whatsapp, got %q", where, uc.Channels[0])
		}
		for j, c := range uc.Channels {
			if !slices.Contains([]string{ChannelWhatsApp, ChannelSMS, ChannelEmail, ChannelPush}, c) {
				bad("%s.channels[%d]: want whatsapp, sms, email or push, got %q", where, j, c)
			} else if slices.Index(uc.Channels, c) != j {
				bad("%s.channels[%d]: %s appears twice", where, j, c)
			}
		}
		if len(uc.Numbers) == 0 {
			bad("%s.numbers: at least one number is required", where)
		}
		inRotation := 0
		seen := map[string]bool{}
		for j := range uc.Numbers {
			n := &uc.Numbers[j]
			at := fmt.Sprintf("line %d: %s.numbers[%d]", n.line, where, j)
			if !validName(n.ID) {
				bad("%s.id: want a phone number id (digits), got %q", at, n.ID)
				// Still counts for the rotation check below, which would
				// otherwise add "every number is a reserve" (test fix).
				if n.Role != RoleReserve {
					inRotation++
				}
				continue
			}
			if seen[n.ID] {
				bad("%s: number %s appears twice in the use case", at, n.ID)
			}
			seen[n.ID] = true
			if n.Role == "" {
				n.Role = RolePrimary
			}
			if !slices.Contains([]string{RolePrimary, RoleHighVolume, RoleReserve}, n.Role) {
				bad("%s.role: want primary, high_volume or reserve, got %q", at, n.Role)
			}
			if n.Role != RoleReserve {
				inRotation++
			}
			if n.Weight == 0 {
				n.Weight = 1
			}
			if n.Weight < 0 || n.Weight > 1000 {
				bad("%s.weight: want 1 to 1000, got %d", at, n.Weight)
			}
			if n.Rate == 0 {
				n.Rate = DefaultRate
			}
			if n.Portfolio != "" && f.portfolio[n.Portfolio] == nil {
				bad("%s.portfolio: no portfolio %q in portfolios", at, n.Portfolio)
			}
			// A number shared by use cases must be described the same
			// way: its budgets are one.
			if prev := f.numbers[n.ID]; prev != nil {
				if prev.WABA != n.WABA || prev.Portfolio != n.Portfolio || prev.Rate != n.Rate {
					bad("%s: number %s has another waba, portfolio or rate at line %d", at, n.ID, prev.line)
				}
				continue
			}
			f.numbers[n.ID] = n
		}
		if len(uc.Numbers) > 0 && inRotation == 0 {
			bad("%s.numbers: every number is a reserve; at least one must be primary or high_volume", where)
		}
	}
	return errors.Join(errs...)
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// UseCase returns the use case named name.
func (f *File) UseCase(name string) (*UseCase, bool) {
	uc, ok := f.useCases[name]
	return uc, ok
}

// Number returns the number with the given id (its first entry).
func (f *File) Number(id string) (*Number, bool) {
	n, ok := f.numbers[id]
	return n, ok
}

// NumberIDs returns every number id, sorted.
func (f *File) NumberIDs() []string {
	ids := make([]string, 0, len(f.numbers))
	for id := range f.numbers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// UseCasesOf returns the names of the use cases number id serves, in file
// order.
func (f *File) UseCasesOf(id string) []string {
	var out []string
	for _, uc := range f.UseCases {
		if slices.ContainsFunc(uc.Numbers, func(n Number) bool { return n.ID == id }) {
			out = append(out, uc.Name)
		}
	}
	return out
}

// DailyLimit is the daily unique-recipient budget of a number's
// portfolio after its quality factor; 0 means unlimited.
func (f *File) DailyLimit(n *Number) int {
	p := f.portfolio[n.Portfolio]
	if p == nil || p.limit == 0 {
		return 0
	}
	return int(float64(p.limit) * f.QualityFactors[p.Quality])
}

// RampFraction is the fraction of its budgets a number ramping since
// start has at now (1 when there is no ramp or it ended), and when the
// next step begins (zero if none).
func (f *File) RampFraction(start, now time.Time) (fraction float64, step int, next time.Time) {
	if len(f.Ramp) == 0 || start.IsZero() {
		return 1, -1, time.Time{}
	}
	el := now.Sub(start)
	fraction, step = f.Ramp[0].Fraction, 0
	for i, s := range f.Ramp {
		if el >= time.Duration(s.After) {
			fraction, step = s.Fraction, i
		}
	}
	if step+1 < len(f.Ramp) {
		next = start.Add(time.Duration(f.Ramp[step+1].After))
	}
	return fraction, step, next
}

// RampDone says whether a ramp started at start has reached full budget.
func (f *File) RampDone(start, now time.Time) bool {
	fr, _, next := f.RampFraction(start, now)
	return fr >= 1 && next.IsZero()
}
