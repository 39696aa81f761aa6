package store

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"vigia/schemas"
)

// Retention is how long each kind of history is kept; the migrations and
// every start apply it as table TTLs.
type Retention struct {
	Events    time.Duration // raw events (rows)
	Recipient time.Duration // the recipient pseudonym column of events (personal data)
	Rollups   time.Duration // per-minute rollups
	Alerts    time.Duration // alert state changes and route actions
	Raw       time.Duration // the raw payload archive
}

func days(d time.Duration) int { return max(1, int((d+24*time.Hour-1)/(24*time.Hour))) }

func (r Retention) params(db string) map[string]string {
	return map[string]string{
		"db":                 db,
		"events_ttl_days":    strconv.Itoa(days(r.Events)),
		"recipient_ttl_days": strconv.Itoa(days(r.Recipient)),
		"rollup_ttl_days":    strconv.Itoa(days(r.Rollups)),
		"alerts_ttl_days":    strconv.Itoa(days(r.Alerts)),
		"raw_ttl_days":       strconv.Itoa(days(r.Raw)),
	}
}

// Migration is one DDL file of schemas/clickhouse.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the embedded migrations in version order. File names
// are NNNN_name.sql; a file holds statements separated by ';' at the end
// of a line.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(schemas.ClickHouse, "clickhouse")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: want NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(schemas.ClickHouse, "clickhouse/"+e.Name())
		if err != nil {
			return nil, err
		}
		if len(out) > 0 && out[len(out)-1].Version == v {
			return nil, fmt.Errorf("migration %s: version %d used twice", e.Name(), v)
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	return out, nil
}

// Statements splits a migration into statements with its parameters
// (${name}) substituted; comment lines are dropped.
func (m Migration) Statements(params map[string]string) ([]string, error) {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(m.SQL, "\n") {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		return nil, fmt.Errorf("migration %04d_%s: last statement has no ';'", m.Version, m.Name)
	}
	for i, s := range out {
		var missing []string
		out[i] = expand(s, params, &missing)
		if len(missing) > 0 {
			return nil, fmt.Errorf("migration %04d_%s: unknown parameters %v", m.Version, m.Name, missing)
		}
	}
	return out, nil
}

func expand(s string, params map[string]string, missing *[]string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		name := s[i+2 : i+j]
		v, ok := params[name]
		if !ok {
			*missing = append(*missing, name)
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+j+1:]
	}
}

// Migrate applies the migrations not applied yet, each recorded in
// schema_migrations once all its statements ran (statements are written
// IF NOT EXISTS, so a migration cut short is simply run again), then sets
// the tables' TTLs from r, so that a changed retention takes effect at
// the next start without a migration. It returns the versions applied.
func (s *Store) Migrate(ctx context.Context, r Retention) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	if err := s.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+s.Table("schema_migrations")+
		" (version UInt32, name String, applied_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY version"); err != nil {
		return nil, fmt.Errorf("schema_migrations: %w", err)
	}
	done := map[int]bool{}
	if err := s.Select(ctx, "SELECT version FROM "+s.Table("schema_migrations"), func(f [][]byte) error {
		v, err := strconv.Atoi(string(f[0]))
		done[v] = true
		return err
	}); err != nil {
		return nil, fmt.Errorf("schema_migrations: %w", err)
	}
	params := r.params(s.db)
	var applied []int
	for _, m := range ms {
		if done[m.Version] {
			continue
		}
		stmts, err := m.Statements(params)
		if err != nil {
			return applied, err
		}
		for _, st := range stmts {
			if err := s.Exec(ctx, st); err != nil {
				return applied, fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
			}
		}
		v := NewValues("version", "name", "applied_at")
		v.Begin().Int(int64(m.Version)).Str(m.Name).Time(time.Now()).End()
		if err := s.Insert(ctx, "schema_migrations", "", v); err != nil {
			return applied, err
		}
		applied = append(applied, m.Version)
	}
	return applied, s.applyTableSettings(ctx, params)
}

// EventsWidePartBytes is the events table's min_bytes_for_wide_part
// (applyTableSettings).
const EventsWidePartBytes = 128 << 20

// applyTableSettings sets every table's TTL from the configuration, and
// the events table's storage settings. The new TTL applies to parts as
// they merge (materialize_ttl_after_modify = 0): rewriting every part at
// each start would cost more than it saves. Tables that are not MergeTree
// (the Distributed tables of a cluster, deploy/clickhouse) are left
// alone: their TTLs and settings live on the local tables, which the
// cluster's operator sets ON CLUSTER.
//
// min_bytes_for_wide_part: a part smaller than 128 MiB (uncompressed) is
// written in the compact format, every column in one file, instead of
// two files per column. The sink's inserts (100,000 rows of the 59
// columns are about 37 MB) then write 2 files instead of about 120, which
// makes chDB take them about 1.5 times faster (docs/BENCHMARKS.md); merges
// still turn bigger parts wide, the format that serves reads of a few
// columns. The setting is here rather than in a migration so that it
// reaches existing tables and skips a cluster's Distributed ones.
func (s *Store) applyTableSettings(ctx context.Context, p map[string]string) error {
	engines := map[string]string{}
	if err := s.Select(ctx, "SELECT name, engine FROM system.tables WHERE database = "+quote(s.db), func(f [][]byte) error {
		engines[string(f[0])] = string(f[1])
		return nil
	}); err != nil {
		return fmt.Errorf("table settings: %w", err)
	}
	// A changed TTL applies as parts merge, not by rewriting them now.
	const ttl = " SETTINGS materialize_ttl_after_modify = 0"
	for _, st := range []string{
		"ALTER TABLE ${db}.events MODIFY TTL toDateTime(event_time) + INTERVAL ${events_ttl_days} DAY" + ttl,
		"ALTER TABLE ${db}.events MODIFY COLUMN recipient String TTL toDateTime(event_time) + INTERVAL ${recipient_ttl_days} DAY" + ttl,
		"ALTER TABLE ${db}.rollup_minute MODIFY TTL minute + INTERVAL ${rollup_ttl_days} DAY" + ttl,
		"ALTER TABLE ${db}.alerts MODIFY TTL toDateTime(eval_time) + INTERVAL ${alerts_ttl_days} DAY" + ttl,
		"ALTER TABLE ${db}.actions MODIFY TTL toDateTime(time) + INTERVAL ${alerts_ttl_days} DAY" + ttl,
		"ALTER TABLE ${db}.raw_payloads MODIFY TTL toDateTime(receive_time) + INTERVAL ${raw_ttl_days} DAY" + ttl,
		"ALTER TABLE ${db}.events MODIFY SETTING min_bytes_for_wide_part = " + strconv.Itoa(EventsWidePartBytes),
	} {
		table := strings.TrimPrefix(strings.Fields(st)[2], "${db}.")
		if !strings.HasSuffix(engines[table], "MergeTree") {
			continue
		}
		var missing []string
		if err := s.Exec(ctx, expand(st, p, &missing)); err != nil {
			return fmt.Errorf("table settings: %w", err)
		}
	}
	return nil
}
