package store_test

import (
	"context"
	"testing"

	"vigia/internal/store"
	_ "vigia/internal/store/chdb"
)

func TestScratchQD(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, q := range []string{
		"SELECT cluster, shard_num, host_name FROM system.clusters",
		"SELECT version()",
		"EXPLAIN AST CREATE TABLE IF NOT EXISTS vigia.x ON CLUSTER '{cluster}' (a String) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/x', '{replica}') ORDER BY a",
		"CREATE TABLE vigia.xl (a String, t DateTime) ENGINE = MergeTree ORDER BY a",
		"CREATE TABLE vigia.xd AS vigia.xl ENGINE = Distributed('nosuch', vigia, xl, cityHash64(a))",
		"CREATE TABLE vigia.xd2 AS vigia.xl ENGINE = Distributed('default', vigia, xl, cityHash64(a))",
		"ALTER TABLE vigia.xd2 MODIFY TTL t + INTERVAL 1 DAY",
		"SELECT toString(map('a','b'))",
		"SELECT getSetting('allow_experimental_analyzer')",
	} {
		err := s.Select(ctx, q, func(f [][]byte) error { t.Logf("%s => %q", q[:min(40, len(q))], f); return nil })
		t.Logf("%s: err=%v", q[:min(60, len(q))], err)
	}
}
