package workflows

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The subset of the workflow syntax the tests look at. Keys that can be a string or a mapping
// (on, permissions, environment, concurrency, needs) stay yaml nodes and are read by the helpers
// below.
type workflow struct {
	path string // relative to the repository root

	Name        string            `yaml:"name"`
	On          yaml.Node         `yaml:"on"`
	Permissions yaml.Node         `yaml:"permissions"`
	Env         map[string]string `yaml:"env"`
	Concurrency yaml.Node         `yaml:"concurrency"`
	Jobs        map[string]*job   `yaml:"jobs"`
}

type job struct {
	id string

	Name        string            `yaml:"name"`
	Needs       yaml.Node         `yaml:"needs"`
	If          string            `yaml:"if"`
	RunsOn      yaml.Node         `yaml:"runs-on"`
	Permissions yaml.Node         `yaml:"permissions"`
	Environment yaml.Node         `yaml:"environment"`
	Concurrency yaml.Node         `yaml:"concurrency"`
	Env         map[string]string `yaml:"env"`
	Outputs     map[string]string `yaml:"outputs"`
	Strategy    struct {
		Matrix yaml.Node `yaml:"matrix"`
	} `yaml:"strategy"`
	Steps []*step `yaml:"steps"`

	// A job that calls a reusable workflow.
	Uses    string            `yaml:"uses"`
	With    map[string]string `yaml:"with"`
	Secrets yaml.Node         `yaml:"secrets"`
}

type step struct {
	ID    string `yaml:"id"`
	Name  string `yaml:"name"`
	If    string `yaml:"if"`
	Uses  string `yaml:"uses"`
	Run   string `yaml:"run"`
	Shell string `yaml:"shell"`
	// ContinueOnError lets a step fail without failing its job.
	ContinueOnError string            `yaml:"continue-on-error"`
	With            map[string]string `yaml:"with"`
	Env             map[string]string `yaml:"env"`
}

// label names a step in failure messages.
func (s *step) label() string {
	switch {
	case s.Name != "":
		return s.Name
	case s.ID != "":
		return s.ID
	case s.Uses != "":
		return s.Uses
	}
	first, _, _ := strings.Cut(strings.TrimSpace(s.Run), "\n")
	return first
}

// repoRoot is the directory of the go.mod of module rates, above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && regexp.MustCompile(`(?m)^module rates\s*$`).Match(data) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root (go.mod of module rates) not found above the test directory")
		}
		dir = parent
	}
}

// loadWorkflows parses every file of .github/workflows, keyed by file name (deploy.yml, ...).
func loadWorkflows(t *testing.T) map[string]*workflow {
	t.Helper()
	root := repoRoot(t)
	paths, err := filepath.Glob(filepath.Join(root, ".github", "workflows", "*"))
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]*workflow{}
	for _, path := range paths {
		name := filepath.Base(path)
		if !strings.HasSuffix(name, ".yml") && !strings.HasSuffix(name, ".yaml") {
			t.Errorf(".github/workflows/%s: only .yml and .yaml files belong there", name)
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		w := &workflow{path: filepath.ToSlash(filepath.Join(".github", "workflows", name))}
		if err := yaml.Unmarshal(data, w); err != nil {
			t.Fatalf("%s: %v", w.path, err)
		}
		if len(w.Jobs) == 0 {
			t.Fatalf("%s: no jobs", w.path)
		}
		for id, j := range w.Jobs {
			if j == nil {
				t.Fatalf("%s: job %s is empty", w.path, id)
			}
			j.id = id
		}
		all[name] = w
	}
	for _, want := range []string{"ci.yml", "deploy.yml", "terraform.yml"} {
		if all[want] == nil {
			t.Fatalf(".github/workflows/%s is missing", want)
		}
	}
	return all
}

// sortedJobs returns the jobs in a stable order, for stable messages.
func (w *workflow) sortedJobs() []*job {
	ids := make([]string, 0, len(w.Jobs))
	for id := range w.Jobs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	jobs := make([]*job, 0, len(ids))
	for _, id := range ids {
		jobs = append(jobs, w.Jobs[id])
	}
	return jobs
}

// events returns the trigger events and their settings (nil nodes for events without settings).
func (w *workflow) events(t *testing.T) map[string]*yaml.Node {
	t.Helper()
	events := map[string]*yaml.Node{}
	switch w.On.Kind {
	case yaml.ScalarNode:
		events[w.On.Value] = nil
	case yaml.SequenceNode:
		for _, n := range w.On.Content {
			events[n.Value] = nil
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(w.On.Content); i += 2 {
			events[w.On.Content[i].Value] = w.On.Content[i+1]
		}
	default:
		t.Fatalf("%s: no `on` triggers", w.path)
	}
	return events
}

// mapping returns the value of key in a mapping node, or nil.
func mapping(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// keys returns the keys of a mapping node, in file order.
func keys(n *yaml.Node) []string {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, n.Content[i].Value)
	}
	return out
}

// stringList reads a scalar or a sequence of scalars.
func stringList(n *yaml.Node) []string {
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil
		}
		return []string{n.Value}
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			out = append(out, c.Value)
		}
		return out
	}
	return nil
}

// permissions reads a permissions node; read-all and write-all become {"*": "read"/"write"}.
func permissions(n *yaml.Node) map[string]string {
	out := map[string]string{}
	switch n.Kind {
	case yaml.ScalarNode:
		if v, ok := strings.CutSuffix(n.Value, "-all"); ok {
			out["*"] = v
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			out[n.Content[i].Value] = n.Content[i+1].Value
		}
	}
	return out
}

// environmentName reads `environment: name` or `environment: {name: ...}`.
func (j *job) environmentName() string {
	switch j.Environment.Kind {
	case yaml.ScalarNode:
		return j.Environment.Value
	case yaml.MappingNode:
		if n := mapping(&j.Environment, "name"); n != nil {
			return n.Value
		}
	}
	return ""
}

// concurrency reads `concurrency: group` or `concurrency: {group, cancel-in-progress}`.
func concurrency(n *yaml.Node) (group, cancelInProgress string) {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value, "false"
	case yaml.MappingNode:
		if g := mapping(n, "group"); g != nil {
			group = g.Value
		}
		cancelInProgress = "false"
		if c := mapping(n, "cancel-in-progress"); c != nil {
			cancelInProgress = c.Value
		}
	}
	return group, cancelInProgress
}

// stepsUsing returns the steps of a job that use the action (owner/repo, any version).
func (j *job) stepsUsing(action string) []*step {
	var out []*step
	for _, s := range j.Steps {
		if name, _, ok := strings.Cut(s.Uses, "@"); ok && name == action {
			out = append(out, s)
		}
	}
	return out
}

// callsWorkflow tells whether the job calls the local reusable workflow file (deploy-environment.yml).
func (j *job) callsWorkflow(file string) bool {
	return j.Uses == "./.github/workflows/"+file
}

// exprRE matches one ${{ ... }} expression.
var exprRE = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// normalizeExpr removes the spaces GitHub ignores inside ${{ }}.
func normalizeExpr(s string) string {
	return exprRE.ReplaceAllStringFunc(s, func(m string) string {
		return "${{ " + strings.TrimSpace(exprRE.FindStringSubmatch(m)[1]) + " }}"
	})
}

// makefileTargets returns the explicit targets of the Makefile (rules like `name: ...`, without
// the pattern and variable-named ones).
func makefileTargets(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rule := regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9_.-]*(?:\s+[A-Za-z0-9][A-Za-z0-9_.-]*)*)\s*::?(?:[^=]|$)`)
	targets := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := rule.FindStringSubmatch(sc.Text()); m != nil {
			for _, name := range strings.Fields(m[1]) {
				targets[name] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(targets) == 0 {
		t.Fatal("no targets found in the Makefile")
	}
	return targets
}

// makeCalls returns the targets of every `make` command in a shell script, and an error text for
// make invocations the test cannot follow (another directory or makefile).
func makeCalls(script string) (targets, problems []string) {
	script = strings.ReplaceAll(script, "\\\n", " ")
	separators := regexp.MustCompile(`&&|\|\||[;|&(){}]|\bthen\b|\bdo\b|\belse\b`)
	for _, line := range strings.Split(script, "\n") {
		if i := strings.Index(line, "#"); i >= 0 && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			line = line[:i]
		}
		for _, command := range separators.Split(line, -1) {
			words := strings.Fields(command)
			// Leading variable assignments and wrappers such as sudo or time.
			for len(words) > 0 && (strings.Contains(words[0], "=") || slices.Contains([]string{"sudo", "time", "exec", "command", "if", "!"}, words[0])) {
				words = words[1:]
			}
			if len(words) == 0 || words[0] != "make" {
				continue
			}
			called := 0
			for _, w := range words[1:] {
				switch {
				case w == "-C" || w == "-f" || strings.HasPrefix(w, "--directory") || strings.HasPrefix(w, "--file") || strings.HasPrefix(w, "--makefile"):
					problems = append(problems, "make with another directory or makefile: "+strings.TrimSpace(command))
				case strings.HasPrefix(w, "-"), strings.Contains(w, "="):
				default:
					targets = append(targets, strings.Trim(w, `"'`))
					called++
				}
			}
			if called == 0 {
				problems = append(problems, "make without a target (the default goal is help): "+strings.TrimSpace(command))
			}
		}
	}
	return targets, problems
}
