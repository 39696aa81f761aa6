package event

// Error classes: the coarse reasons rules reason about (DESIGN.md section 4).
const (
	ClassThrottle      = "throttle"
	ClassSpam          = "spam"
	ClassMarketingCap  = "marketing_cap"
	ClassOptedOut      = "opted_out"
	ClassUndeliverable = "undeliverable"
	ClassWindowClosed  = "window_closed"
	ClassAccount       = "account"
	ClassMaintenance   = "maintenance"
	ClassOther         = "other"
)

var errorClasses = map[int]string{
	130429: ClassThrottle, // number throughput
	131056: ClassThrottle, // pair rate limit
	80007:  ClassThrottle, // API rate limit
	4:      ClassThrottle, // application rate limit
	131048: ClassSpam,     // spam rate limit
	368:    ClassSpam,     // temporarily blocked for policy violations
	131049: ClassMarketingCap,
	131050: ClassOptedOut,
	131026: ClassUndeliverable,
	131047: ClassWindowClosed, // re-engagement: 24 h window closed
	470:    ClassWindowClosed,
	131031: ClassAccount, // account locked
	131042: ClassAccount, // payment issue
	130497: ClassAccount, // country blocked
	131057: ClassMaintenance,
}

// ErrorClass returns the class of a WhatsApp error code, or ClassOther.
func ErrorClass(code int) string {
	if c, ok := errorClasses[code]; ok {
		return c
	}
	return ClassOther
}

// ErrorClasses lists every class, for metric labels created up front.
func ErrorClasses() []string {
	return []string{ClassThrottle, ClassSpam, ClassMarketingCap, ClassOptedOut,
		ClassUndeliverable, ClassWindowClosed, ClassAccount, ClassMaintenance, ClassOther}
}
