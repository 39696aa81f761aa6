package ruletest

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigia/internal/event"
)

// TestShippedRulePack runs the unit tests of every shipped rule.
func TestShippedRulePack(t *testing.T) {
	files, err := filepath.Glob("../../rules/tests/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule tests found: %v", err)
	}
	var out bytes.Buffer
	if code := Run(&out, files...); code != 0 {
		t.Fatalf("rule pack tests failed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), " passed, 0 failed") {
		t.Fatalf("no summary:\n%s", out.String())
	}
}

// TestWrongExpectationsFail shows the runner can fail: each test of the
// file expects something false.
func TestWrongExpectationsFail(t *testing.T) {
	var out bytes.Buffer
	if code := Run(&out, "testdata/wrong_test.yaml"); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out.String())
	}
	for _, want := range []string{
		"expected firing TemplatePausedOrRed",
		"unexpected firing TemplatePausedOrRed",
		`expected firing NumberQualityDowngrade{phone_number="P2"}`,
		"0 passed, 3 failed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestGenerate(t *testing.T) {
	start := DefaultStart
	evs, err := Generate(start, []string{
		"0m-1m every 10s: 2 sent phone_number=P1 waba=W1 template=t1",
		"30s: 3 delivered phone_number=P1 waba=W1",
		"40s: 1 optout phone_number=P1 waba=W1",
		"50s: failed code=131048 phone_number=P1 waba=W1",
	})
	if err != nil {
		t.Fatal(err)
	}
	var sent, delivered, optouts, failed int
	ids := map[string]bool{}
	for _, e := range evs {
		if ids[e.ID] {
			t.Errorf("duplicate id %s", e.ID)
		}
		ids[e.ID] = true
		switch {
		case e.Status == event.StatusSent:
			sent++
			if e.Attribution == nil || e.Attribution.Template != "t1" {
				t.Errorf("sent without attribution: %+v", e)
			}
		case e.Status == event.StatusDelivered:
			delivered++
			// the oldest waiting messages: sent at 0s and 10s
			if e.EventTime.Sub(start) != 30*time.Second || e.MessageID > "m4" {
				t.Errorf("delivered %s at %s", e.MessageID, e.EventTime.Sub(start))
			}
		case e.OptOut != nil && e.Kind == event.KindInbound:
			optouts++
			if e.Attribution != nil || e.Recipient == nil {
				t.Errorf("opt-out must name its user and no template: %+v", e)
			}
		case e.Status == event.StatusFailed:
			failed++
			if e.Error.Code != 131048 || e.Error.Class != event.ClassSpam {
				t.Errorf("failed: %+v", e.Error)
			}
		}
	}
	if sent != 12 || delivered != 3 || optouts != 1 || failed != 1 {
		t.Errorf("sent %d delivered %d optouts %d failed %d", sent, delivered, optouts, failed)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].EventTime.Before(evs[i-1].EventTime) {
			t.Fatal("events not in time order")
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	for _, line := range []string{
		"no colon here",
		"xx: sent",
		"0m-1m every 0s: sent",
		"1m: teleported",
		"1m: sent color=blue",
		"1m: template_status template=x",
		"1m: failed code=abc",
	} {
		if _, err := Generate(DefaultStart, []string{line}); err == nil {
			t.Errorf("%q: no error", line)
		}
	}
}
