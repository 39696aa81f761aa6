package meta

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The seed corpus under testdata/fuzz/FuzzNormalize holds one file per
// fixture testdata/*.json, in Go's corpus file format. Regenerate it after
// adding or changing a fixture with
//
//	go test ./internal/meta -run TestFuzzNormalizeSeedCorpus -update-fuzz-seeds
var updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite testdata/fuzz/FuzzNormalize from testdata/*.json")

const fuzzSeedDir = "testdata/fuzz/FuzzNormalize"

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// fuzzFixtures returns the JSON fixtures by base name without extension.
func fuzzFixtures(tb testing.TB) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no fixtures: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = b
	}
	return out
}

// seedFile is the corpus file the go command reads for one []byte argument.
func seedFile(data []byte) []byte {
	return []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n")
}

func TestFuzzNormalizeSeedCorpus(t *testing.T) {
	fixtures := fuzzFixtures(t)
	if *updateFuzzSeeds {
		if err := os.MkdirAll(fuzzSeedDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range fixtures {
			if err := os.WriteFile(filepath.Join(fuzzSeedDir, name), seedFile(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, data := range fixtures {
		got, err := os.ReadFile(filepath.Join(fuzzSeedDir, name))
		if err != nil {
			t.Errorf("fixture %s.json has no seed (run with -update-fuzz-seeds): %v", name, err)
			continue
		}
		if string(got) != string(seedFile(data)) {
			t.Errorf("seed %s is out of date with testdata/%s.json (run with -update-fuzz-seeds)", name, name)
		}
	}
}

// FuzzNormalize feeds arbitrary bytes to Normalize: it must never panic, and
// every event it returns must carry the fields all consumers rely on.
func FuzzNormalize(f *testing.F) {
	for _, data := range fuzzFixtures(f) {
		f.Add(data)
	}
	for _, s := range []string{
		``, `{}`, `null`, `{"object":"whatsapp_business_account"}`,
		`{"object":"whatsapp_business_account","entry":[{"id":1,"time":-5,"changes":[{"field":"messages","value":null}]}]}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"statuses":[{"id":"w","status":"sent","timestamp":"99999999999999","errors":[{"code":"1.3105e5"}]}]}}]}]}`,
	} {
		f.Add([]byte(s))
	}
	n := newBenchNormalizer(f)
	received := time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.FixedZone("BRT", -3*3600))
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := n.Normalize(body, received)
		if err != nil {
			if len(res.Events) != 0 || len(res.Rejects) != 0 {
				t.Fatalf("error %v with a non-empty result", err)
			}
			return
		}
		for i, e := range res.Events {
			if !hex32.MatchString(e.ID) {
				t.Errorf("event %d: id %q is not 32 hex chars", i, e.ID)
			}
			if e.SchemaVersion != 1 {
				t.Errorf("event %d: schema version %d", i, e.SchemaVersion)
			}
			if e.Kind == "" {
				t.Errorf("event %d: empty kind", i)
			}
			if !e.ReceiveTime.Equal(received) {
				t.Errorf("event %d: receive time %v, want %v", i, e.ReceiveTime, received)
			}
		}
		for i, r := range res.Rejects {
			if r.Reason == "" {
				t.Errorf("reject %d: empty reason", i)
			}
		}
	})
}
