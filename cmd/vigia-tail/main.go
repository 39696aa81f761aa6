// Command vigia-tail prints the records of a Vigia topic: the normalized
// events by default, one JSON document per line, or a count per kind. It
// reads everything up to the end offsets at start and exits; it is a tool for
// demos and checks by hand (kcat does the same for any client).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"vigia/internal/event"
	"vigia/internal/kafkaio"
)

func main() { os.Exit(run()) }

func run() int {
	brokers := flag.String("brokers", envOr("VIGIA_KAFKA_BROKERS", "127.0.0.1:19192"), "bootstrap brokers, comma-separated")
	topic := flag.String("topic", "vigia.events", "topic to read")
	limit := flag.Int("n", 0, "print at most n records (0: all)")
	summary := flag.Bool("summary", false, "print a count per kind and status instead of the records")
	headers := flag.Bool("headers", false, "print record headers (dead-letter reasons) before each value")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	msgs, err := kafkaio.ReadAll(ctx, strings.Split(*brokers, ","), *topic)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vigia-tail:", err)
		return 1
	}
	if *summary {
		counts := map[string]int{}
		for _, m := range msgs {
			var e event.Event
			if json.Unmarshal(m.Value, &e) != nil {
				counts["(not an event)"]++
				continue
			}
			k := string(e.Kind)
			if e.Status != "" {
				k += "/" + e.Status
			}
			if e.OptOut != nil {
				k += " opt-out:" + e.OptOut.Source
			}
			counts[k]++
		}
		keys := make([]string, 0, len(counts))
		for k := range counts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Printf("%d records in %s\n", len(msgs), *topic)
		for _, k := range keys {
			fmt.Printf("  %6d  %s\n", counts[k], k)
		}
		return 0
	}
	for i, m := range msgs {
		if *limit > 0 && i >= *limit {
			break
		}
		if *headers {
			for _, h := range m.Headers {
				fmt.Printf("# %s: %s\n", h.Key, h.Value)
			}
		}
		fmt.Printf("%s\n", m.Value)
	}
	return 0
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
