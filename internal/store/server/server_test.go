package server_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"vigia/internal/store"
	_ "vigia/internal/store/server"
	"vigia/internal/store/storetest"
)

// TestContract runs the store contract on a ClickHouse server when
// CLICKHOUSE_ADDR (host:9000) is set; no modern server can be installed
// on the project's machines, so CI runs the contract on chDB only.
func TestContract(t *testing.T) {
	addr := os.Getenv("CLICKHOUSE_ADDR")
	if addr == "" {
		t.Skip("set CLICKHOUSE_ADDR=host:9000 (and CLICKHOUSE_USER, CLICKHOUSE_PASSWORD) to run the contract on a ClickHouse server")
	}
	n := 0
	storetest.Run(t, func(t *testing.T) *store.Store {
		n++
		ctx := context.Background()
		db := fmt.Sprintf("vigia_test_%d_%d", time.Now().UnixNano(), n)
		s, err := store.Open(ctx, store.Options{Addr: addr, Database: db,
			Username: os.Getenv("CLICKHOUSE_USER"), Password: os.Getenv("CLICKHOUSE_PASSWORD")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = s.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
			s.Close()
		})
		if _, err := s.Migrate(ctx, storetest.Retention); err != nil {
			t.Fatal(err)
		}
		return s
	})
}
