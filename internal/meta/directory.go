package meta

import (
	"sync"

	"vigia/internal/pseudo"
)

// PhoneNumber is a business phone number Vigia knows about.
type PhoneNumber struct {
	ID      string // phone_number_id
	Display string // display_phone_number, any formatting
	WABAID  string
}

// Directory maps display numbers to phone number ids. Meta's
// phone_number_quality_update names only the display number, while every
// other event and every rule key uses the id. The directory is seeded from
// configuration and learns from the metadata of "messages" webhooks; it holds
// at most a fixed number of learned entries, since the input is outside data.
type Directory struct {
	mu         sync.RWMutex
	byDisplay  map[string]PhoneNumber // key: display digits
	configured map[string]bool
	maxLearned int
	learned    int
}

// NewDirectory returns a directory seeded with configured numbers that learns
// at most maxLearned more.
func NewDirectory(configured []PhoneNumber, maxLearned int) *Directory {
	d := &Directory{byDisplay: map[string]PhoneNumber{}, configured: map[string]bool{}, maxLearned: maxLearned}
	for _, p := range configured {
		k := pseudo.Digits(p.Display)
		d.byDisplay[k] = p
		d.configured[k] = true
	}
	return d
}

// Lookup returns the phone number for a display number.
func (d *Directory) Lookup(display string) (PhoneNumber, bool) {
	k := pseudo.Digits(display)
	if k == "" {
		return PhoneNumber{}, false
	}
	d.mu.RLock()
	p, ok := d.byDisplay[k]
	d.mu.RUnlock()
	return p, ok
}

// Learn records what a "messages" webhook's metadata says. Configured entries
// win over learned ones; learning stops at the bound.
func (d *Directory) Learn(display, id, wabaID string) {
	k := pseudo.Digits(display)
	if k == "" || id == "" {
		return
	}
	d.mu.RLock()
	cur, ok := d.byDisplay[k]
	d.mu.RUnlock()
	if ok && (d.configured[k] || (cur.ID == id && cur.WABAID == wabaID)) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.byDisplay[k]; !ok {
		if d.learned >= d.maxLearned {
			return
		}
		d.learned++
	}
	d.byDisplay[k] = PhoneNumber{ID: id, Display: display, WABAID: wabaID}
}
