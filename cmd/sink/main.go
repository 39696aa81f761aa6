// Command sink copies Vigia's Kafka topics (events, alerts, actions, and
// raw payloads when archived) into ClickHouse: a server when
// clickhouse.addr is set, else embedded chDB in clickhouse.path (the
// library comes from CHDB_LIB_PATH; scripts/chdb.sh fetches it).
//
//	sink [flags]
//
// It applies the DDL migrations at start and reads the same configuration
// as the other services (-h lists the settings).
package main

import (
	"context"
	"fmt"
	"os"

	"vigia/internal/app"
	"vigia/internal/config"
	"vigia/internal/logging"
	_ "vigia/internal/store/chdb"
	_ "vigia/internal/store/server"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	cfg, code, ok := config.LoadCommand("sink", args, os.Stderr)
	if !ok {
		return code
	}
	log := logging.New(os.Stderr, cfg.Log.Level).With("component", "sink")
	st, err := app.OpenStore(context.Background(), cfg, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sink: %s\n", err)
		return 1
	}
	defer st.Close()
	return app.Run("sink", app.NewSink(cfg, log, st, st), log, nil)
}
