package rules

import (
	"errors"
	"fmt"
	"io"
)

// Check loads paths as Load does and prints the outcome to w for the
// `evaluator check` command: every problem, or a one-line summary. It
// returns the process exit code: 0 when the rules load, 1 otherwise.
func Check(w io.Writer, paths ...string) int {
	set, err := Load(paths...)
	if err != nil {
		var probs Problems
		if errors.As(err, &probs) {
			for _, p := range probs {
				fmt.Fprintln(w, p.Error())
			}
			fmt.Fprintf(w, "%s\n", plural(len(probs), "problem"))
		} else {
			fmt.Fprintln(w, err)
		}
		return 1
	}
	rules := 0
	for _, g := range set.Groups {
		rules += len(g.Rules)
	}
	fmt.Fprintf(w, "%s, %s, %s: OK\n", plural(len(set.Files), "file"), plural(len(set.Groups), "group"), plural(rules, "rule"))
	return 0
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
