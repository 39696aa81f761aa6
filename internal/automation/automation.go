// Package automation turns alert records into route commands: the actions
// of a firing alert, the restore scheduling of a resolved one, and the
// restores that fall due. The guards themselves (idempotency, locks,
// cooldown, budget, dry-run) are in route.State.Apply, so that every
// control replica applies them the same way; this package only proposes.
package automation

import (
	"fmt"
	"time"

	"vigia/internal/action"
	"vigia/internal/alert"
	"vigia/internal/route"
)

// Actor is the actor of automatic commands in the audit log.
const Actor = "vigia-control"

// Commands returns the commands one alert record asks for at now: one per
// action of a firing alert, one resolved for a resolved alert that has
// actions, none otherwise (pending and inactive records act on nothing).
// Firing records whose evaluation time is older than maxAge are skipped
// (a new consumer group reading an old topic must not replay last week's
// failovers); resolved records are always used, since they only schedule
// restores of what was done.
func Commands(a *alert.Alert, now time.Time, maxAge time.Duration) []route.Command {
	if len(a.Actions) == 0 {
		return nil
	}
	ref := func(i int, act alert.Action) *route.AlertRef {
		return &route.AlertRef{Name: a.Name, Fingerprint: a.Fingerprint, Occurrence: a.Occurrence(), Labels: a.Labels, Index: i, Action: act}
	}
	switch a.State {
	case alert.StateFiring:
		if maxAge > 0 && now.Sub(a.EvalTime) > maxAge {
			return nil
		}
		out := make([]route.Command, 0, len(a.Actions))
		for i, act := range a.Actions {
			reason := "alert " + a.Name + " firing"
			if s := a.Annotations["summary"]; s != "" {
				reason += ": " + s
			}
			out = append(out, route.Command{Time: now.UTC(), Op: route.OpAlert, Actor: Actor, ActorKind: action.ActorRule,
				Reason: reason, Alert: ref(i, act)})
		}
		return out
	case alert.StateResolved:
		return []route.Command{{Time: now.UTC(), Op: route.OpResolved, Actor: Actor, ActorKind: action.ActorRule,
			Reason: "alert " + a.Name + " resolved", Alert: ref(-1, alert.Action{})}}
	}
	return nil
}

// Restores returns the restore commands due at now in state s, skipping
// occurrences in skip (those tried recently, whose restore a lock holds
// back).
func Restores(s *route.State, now time.Time, restoreAfter time.Duration, skip func(occurrence string) bool) []route.Command {
	var out []route.Command
	for _, id := range s.DueRestores(now) {
		if skip != nil && skip(id) {
			continue
		}
		occ := s.Occurrences[id]
		out = append(out, route.Command{Time: now.UTC(), Op: route.OpRestore, Actor: Actor, ActorKind: action.ActorRule,
			Reason: fmt.Sprintf("restore: alert %s resolved and stayed so for %s", occ.Alert, restoreAfter),
			Alert:  &route.AlertRef{Name: occ.Alert, Occurrence: id, Index: -1}})
	}
	return out
}
