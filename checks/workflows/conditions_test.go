package workflows

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// eventNameRE finds comparisons of the event that started a run: github.event_name == 'push'.
var eventNameRE = regexp.MustCompile(`github\.event_name\s*(?:==|!=)\s*'([a-z_]+)'`)

// Every comparison of github.event_name in a workflow names an event that can start it: one of its
// own triggers or, in a reusable workflow, an event of a workflow that calls it. A condition on any
// other event is never true (or, with !=, always), and reads as if it mattered.
func TestEventConditionsCanBeTrue(t *testing.T) {
	all := loadWorkflows(t)
	found := 0
	for name, w := range all {
		events := possibleEvents(t, all, name, map[string]bool{})
		data, err := os.ReadFile(filepath.Join(repoRoot(t), w.path))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			for _, m := range eventNameRE.FindAllStringSubmatch(line, -1) {
				found++
				if !events[m[1]] {
					t.Errorf("%s:%d compares github.event_name with %q, but only %v can start it", w.path, i+1, m[1], sortedKeys(events))
				}
			}
		}
	}
	if found == 0 {
		t.Fatal("no github.event_name comparison found: the pattern no longer matches the workflows")
	}
}

// possibleEvents returns the events that can start a workflow: its triggers, with workflow_call
// replaced by the events of its callers.
func possibleEvents(t *testing.T, all map[string]*workflow, name string, seen map[string]bool) map[string]bool {
	t.Helper()
	seen[name] = true
	out := map[string]bool{}
	for event := range all[name].events(t) {
		if event != "workflow_call" {
			out[event] = true
			continue
		}
		for callerName, caller := range all {
			if seen[callerName] {
				continue
			}
			for _, j := range caller.Jobs {
				if j.Uses == "./.github/workflows/"+name {
					for e := range possibleEvents(t, all, callerName, seen) {
						out[e] = true
					}
				}
			}
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
