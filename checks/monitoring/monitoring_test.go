package monitoring

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"rates/internal/metrics"
)

const root = "../.."

// registry is what the Go code registers: name -> label names.
func registry(t *testing.T) map[string][]string {
	t.Helper()
	names := metrics.New("checks").Names()
	if len(names) < 10 {
		t.Fatalf("the registry lists only %d metrics", len(names))
	}
	return names
}

func selection() map[string]metrics.EMFMetric {
	sel := map[string]metrics.EMFMetric{}
	for _, s := range metrics.EMFSelection() {
		sel[s.Name] = s
	}
	return sel
}

func checkRegistered(t *testing.T, where, name string, reg map[string][]string) bool {
	t.Helper()
	if _, ok := reg[name]; ok {
		return true
	}
	t.Errorf("%s names %s, which the Go registry (internal/metrics) does not have", where, name)
	return false
}

// binding is one use of an application metric in Terraform: the metric and the dimension names
// the alarm or widget selects it by.
type binding struct {
	where string
	name  string
	dims  []string
}

var (
	// Single-metric alarms: metric_name = "rates_..." followed by its dimensions.
	alarmRE = regexp.MustCompile(`metric_name\s*=\s*"(rates_[a-z0-9_]+)"\s*\n\s*dimensions\s*=\s*(merge\(local\.app_\w+,\s*\{([^}]*)\}\)|local\.app_\w+)`)
	// Metric queries of the ratio alarms: { name = "rates_...", dimensions = ..., stat = ... }.
	queryRE = regexp.MustCompile(`name\s*=\s*"(rates_[a-z0-9_]+)",\s*dimensions\s*=\s*(merge\(local\.app_\w+,\s*\{([^}]*)\}\)|local\.app_\w+)`)
	// Dashboard widgets: [local.ns, "rates_...", "Dim", value, "Dim", value, { options }].
	widgetRE = regexp.MustCompile(`\[local\.ns,\s*"(rates_[a-z0-9_]+)"((?:,\s*"[A-Za-z]+",\s*[^,\]{]+)*)`)
	anyRE    = regexp.MustCompile(`"(rates_[a-z0-9_]+)"`)
	keyRE    = regexp.MustCompile(`([A-Za-z]+)\s*=`)
	pairRE   = regexp.MustCompile(`,\s*"([A-Za-z]+)",\s*[^,\]{]+`)
)

func terraformBindings(t *testing.T) (bindings []binding, all map[string]bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "terraform", "modules", "monitoring", "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no monitoring module: %v", err)
	}
	all = map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := string(raw)
		where := filepath.Base(f)
		for _, m := range anyRE.FindAllStringSubmatch(stripComments(src), -1) {
			all[m[1]] = true
		}
		for _, re := range []*regexp.Regexp{alarmRE, queryRE} {
			for _, m := range re.FindAllStringSubmatch(src, -1) {
				dims := []string{metrics.ServiceDimension}
				for _, k := range keyRE.FindAllStringSubmatch(m[3], -1) {
					dims = append(dims, k[1])
				}
				bindings = append(bindings, binding{where, m[1], dims})
			}
		}
		for _, m := range widgetRE.FindAllStringSubmatch(src, -1) {
			var dims []string
			for _, p := range pairRE.FindAllStringSubmatch(m[2], -1) {
				dims = append(dims, p[1])
			}
			bindings = append(bindings, binding{where + " (dashboard)", m[1], dims})
		}
	}
	return bindings, all
}

func stripComments(src string) string {
	var b strings.Builder
	for _, line := range strings.Split(src, "\n") {
		// Comments, and variable names that happen to start with rates_.
		if l := strings.TrimSpace(line); !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "variable ") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func TestTerraformBindsToPublishedMetrics(t *testing.T) {
	reg, sel := registry(t), selection()
	bindings, all := terraformBindings(t)
	bound := map[string]bool{}
	for _, b := range bindings {
		bound[b.name] = true
	}
	// Every rates_ name in the module is one the parser understood, so none escapes the checks.
	for name := range all {
		if !bound[name] {
			t.Errorf("monitoring module names %s outside an alarm, metric query or widget this test reads", name)
		}
	}
	if len(bindings) < 20 {
		t.Fatalf("found only %d bindings of application metrics: the parser no longer matches the module", len(bindings))
	}
	for _, b := range bindings {
		s, published := sel[b.name]
		if !published {
			t.Errorf("%s: %s is not in the EMF selection, so it never reaches CloudWatch", b.where, b.name)
			continue
		}
		if checkRegistered(t, b.where, b.name, reg) {
			for label := range s.Dimensions {
				if !slices.Contains(reg[b.name], label) {
					t.Errorf("EMF dimension from label %q: %s has labels %v", label, b.name, reg[b.name])
				}
			}
		}
		// CloudWatch matches a metric by its exact dimension set.
		got := slices.Clone(b.dims)
		sort.Strings(got)
		if !slices.ContainsFunc(s.DimensionSets(), func(set []string) bool {
			set = slices.Clone(set)
			sort.Strings(set)
			return slices.Equal(set, got)
		}) {
			t.Errorf("%s: %s with dimensions %v, but it is published under %v", b.where, b.name, b.dims, s.DimensionSets())
		}
	}
}

// GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

func TestEveryAlarmRunbookSectionExists(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if h, ok := strings.CutPrefix(line, "#"); ok {
			sections[anchor(strings.TrimSpace(strings.TrimLeft(h, "#")))] = true
		}
	}
	files, _ := filepath.Glob(filepath.Join(root, "terraform", "modules", "monitoring", "*.tf"))
	runbookRE := regexp.MustCompile(`runbook\s*=\s*"([a-z0-9-]+)"|Runbook: \$\{local\.runbook\}#([a-z0-9-]+)`)
	found := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range runbookRE.FindAllStringSubmatch(string(raw), -1) {
			a := m[1] + m[2]
			found++
			if !sections[a] {
				t.Errorf("%s: runbook section #%s is not a heading of docs/operations.md", filepath.Base(f), a)
			}
		}
	}
	if found < 20 {
		t.Errorf("found %d runbook references, want one per alarm", found)
	}
}

// promNameRE finds metric names in PromQL with their label matchers, if any.
var promNameRE = regexp.MustCompile(`(rates_[a-z0-9_]+)(\{([^}]*)\})?`)

func TestGrafanaDashboardUsesRegisteredMetrics(t *testing.T) {
	reg := registry(t)
	raw, err := os.ReadFile(filepath.Join(root, "deploy", "monitoring", "grafana", "dashboards", "rates.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range dash.Panels {
		for _, q := range p.Targets {
			for _, m := range promNameRE.FindAllStringSubmatch(q.Expr, -1) {
				name := m[1]
				// A histogram's series carry suffixes the registry's name does not.
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if base, ok := strings.CutSuffix(name, suffix); ok {
						if _, registered := reg[base]; registered {
							name = base
						}
					}
				}
				seen[name] = true
				if !checkRegistered(t, "panel "+p.Title, name, reg) {
					continue
				}
				for _, matcher := range strings.Split(m[3], ",") {
					label, _, _ := strings.Cut(matcher, "=")
					label = strings.TrimSpace(strings.TrimRight(label, "!~"))
					if label != "" && label != "le" && !slices.Contains(reg[name], label) {
						t.Errorf("panel %q selects label %q of %s, which has labels %v", p.Title, label, name, reg[name])
					}
				}
			}
		}
	}
	// The local dashboard shows the same application signals as the CloudWatch one.
	_, tf := terraformBindings(t)
	for name := range tf {
		if !seen[name] && name != "rates_db_pool_canceled_acquires_total" {
			t.Errorf("the CloudWatch dashboard or alarms use %s, the Grafana dashboard does not", name)
		}
	}
}
