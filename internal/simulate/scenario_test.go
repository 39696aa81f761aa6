package simulate

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// goodScenario is a minimal valid scenario the bad cases edit.
const goodScenario = `name: t
speed: 10
duration: 2m
wabas:
  - id: "100"
    numbers:
      - {id: "201", display: "+1 555 000 0001"}
      - {id: "202", display: "+1 555 000 0002"}
templates:
  - {name: promo, category: marketing}
  - {name: order, category: utility}
use_cases:
  - {name: sales, templates: [promo, order], rate: 2/s}
incidents:
  - {type: number_blocked, number: "201", at: 30s}
`

func TestParseGood(t *testing.T) {
	sc, err := Parse("good.yaml", []byte(goodScenario))
	if err != nil {
		t.Fatal(err)
	}
	in := sc.Incidents[0]
	if in.Line != 15 || in.Code != 368 || *in.Fraction != 1 || in.Name != "number_blocked #1" {
		t.Errorf("incident defaults: %+v (fraction %v)", in, *in.Fraction)
	}
	if sc.Speed != 10 || sc.Duration.D() != 2*time.Minute || sc.UseCases[0].Rate != 2 {
		t.Errorf("scenario: speed %v duration %v rate %v", sc.Speed, sc.Duration.D(), sc.UseCases[0].Rate)
	}
	if *sc.Traffic.Delivered != 0.97 || sc.Traffic.DeliveredAfter.Max != 12*time.Second || sc.Templates[0].Language != "pt_BR" {
		t.Errorf("traffic defaults: %+v", sc.Traffic)
	}
	if got := in.End(sc.Duration.D()); got != 2*time.Minute {
		t.Errorf("an incident without for lasts to the end: %s", got)
	}
}

// TestParseBad: every problem is reported, with the file and the line.
func TestParseBad(t *testing.T) {
	for _, c := range []struct {
		name, from, to string
		want           []string
	}{
		{"unknown key", "speed: 10", "sped: 10", []string{"bad.yaml:", "line 2: field sped not found"}},
		{"bad duration", "duration: 2m", "duration: two minutes", []string{"line 3"}},
		{"bad rate", "rate: 2/s", "rate: fast", []string{"line 13: rate"}},
		{"unknown type", "type: number_blocked", "type: number_on_fire",
			[]string{"bad.yaml:15: incidents[0].type: must be one of number_spam_limited"}},
		{"undeclared number", `number: "201"`, `number: "999"`,
			[]string{"bad.yaml:15: incidents[0].number: 999 is not declared in wabas"}},
		{"at beyond duration", "at: 30s}", "at: 3m}", []string{"bad.yaml:15: incidents[0].at: must fall within the scenario's duration (2m0s), got 3m0s"}},
		{"template incident without template", `{type: number_blocked, number: "201", at: 30s}`, `{type: template_paused, at: 30s}`,
			[]string{"bad.yaml:15: incidents[0].template: required for template_paused"}},
		{"undeclared template in use case", "templates: [promo, order]", "templates: [promo, welcome]",
			[]string{`bad.yaml:13: use_cases[0].templates: template "welcome" is not declared`}},
		{"bad number id", `{id: "202"`, `{id: "PN2"`, []string{`bad.yaml:8: wabas[0].numbers[1].id: must be the phone number id (digits), got "PN2"`}},
		{"speed and fraction, both reported", "speed: 10", "speed: -1",
			[]string{"bad.yaml:2: speed: must be above 0", "bad.yaml:3:"}},
		{"fraction out of range", "at: 30s}", "at: 30s, fraction: 1.5}", []string{"incidents[0].fraction: a share between 0 and 1, got 1.5"}},
		{"bad delay range", "use_cases:", "traffic: {delivered_after: [10s, 2s]}\nuse_cases:", []string{"line 12: delay range [10s, 2s]: max below min"}},
		{"no use cases", "use_cases:\n  - {name: sales, templates: [promo, order], rate: 2/s}\n", "", []string{"use_cases: at least one use case is required"}},
		{"factor on the wrong type", "at: 30s}", "at: 30s, factor: 2}", []string{"incidents[0].factor: only throughput_errors takes a factor"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(goodScenario, c.from, c.to, 1)
			if text == goodScenario {
				t.Fatalf("case does not change the scenario: %q", c.from)
			}
			if c.name == "speed and fraction, both reported" {
				text = strings.Replace(text, "duration: 2m", "duration: 0s", 1)
			}
			_, err := Parse("bad.yaml", []byte(text))
			if err == nil {
				t.Fatalf("no error for\n%s", text)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

// TestShippedScenariosParse: the drills and the quickstart are valid, and
// every incident type appears in at least one of them or in the tests.
func TestShippedScenariosParse(t *testing.T) {
	files, err := filepath.Glob("../../deploy/drills/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".routes.yaml") || filepath.Base(f) == "vigia.yaml" {
			continue
		}
		n++
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if n < 3 {
		t.Errorf("found %d scenarios in deploy/drills, want the quickstart and the drills", n)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(goodScenario))
	f.Add([]byte("name: x\nincidents: [{type: platform_outage, at: 1s, waba: '1'}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := Parse("fuzz.yaml", data)
		if err == nil && (sc.Speed <= 0 || sc.Duration <= 0 || len(sc.UseCases) == 0) {
			t.Fatalf("accepted an unusable scenario: %+v", sc)
		}
	})
}
