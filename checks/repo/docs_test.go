package repo

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"rates/internal/config"
)

// maxReadmeLines keeps the README a front door: what the service is, the two commands, the
// picture, the main commands and settings, and links into docs/.
const maxReadmeLines = 250

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// commandLines are the commands of a shell text: its lines without comments and blank lines.
func commandLines(text string) []string {
	var cmds []string
	for _, line := range strings.Split(text, "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			cmds = append(cmds, line)
		}
	}
	return cmds
}

// The README opens with `make run` and `make test`, and CI (.ci/run) runs exactly the README's
// test command, so the command a newcomer is told to run is the one CI runs.
func TestReadmeStartsWithTheTwoCommands(t *testing.T) {
	readme := readFile(t, "README.md")
	lines := strings.Split(readme, "\n")
	if len(lines) > maxReadmeLines+1 { // the last line ends with a newline
		t.Errorf("README.md has %d lines, at most %d: move detail into docs/", len(lines)-1, maxReadmeLines)
	}
	// The first block of the README, right after the title.
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "```") })
	var block []string
	if i >= 0 {
		for _, l := range lines[i+1:] {
			if strings.HasPrefix(l, "```") {
				break
			}
			block = append(block, l)
		}
	}
	title := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "# ") })
	if i < 0 || title < 0 || slices.ContainsFunc(lines[title+1:i], func(l string) bool { return strings.TrimSpace(l) != "" }) {
		t.Fatalf("README.md must start with its title and then the block of the two commands")
	}
	cmds := commandLines(strings.Join(block, "\n"))
	if !slices.Equal(cmds, []string{"make run", "make test"}) {
		t.Fatalf("the README's first block runs %q, want make run and make test", cmds)
	}
	ci := commandLines(readFile(t, ".ci/run"))
	if !slices.Contains(ci, cmds[1]) {
		t.Errorf(".ci/run does not run the README's test command %q as a command line of its own: %q", cmds[1], ci)
	}
}

var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// slug is the anchor GitHub gives a heading: lower case, punctuation but - and _ dropped,
// spaces as hyphens.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors are the heading anchors of a Markdown file, outside code blocks.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	inCode := false
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
			continue
		}
		if !inCode && strings.HasPrefix(line, "#") {
			out[slug(strings.TrimLeft(line, "#"))] = true
		}
	}
	return out
}

// Every relative link of the README and of docs/ names a file of the repository, and every
// anchor a heading of it: what moved out of the README must still be found from it.
func TestDocumentationLinksResolve(t *testing.T) {
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := []string{"README.md"}
	for _, d := range docs {
		rel, _ := filepath.Rel(root, d)
		files = append(files, rel)
	}
	if !slices.Contains(files, filepath.Join("docs", "configuration.md")) {
		t.Fatalf("docs/configuration.md is missing: %v", files)
	}
	checked := 0
	for _, file := range files {
		text := readFile(t, file)
		for _, m := range linkRE.FindAllStringSubmatch(text, -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			target, anchor, _ := strings.Cut(link, "#")
			path := file
			if target != "" {
				path = filepath.Join(filepath.Dir(file), target)
			}
			info, err := os.Stat(filepath.Join(root, path))
			if err != nil {
				t.Errorf("%s: link %s: %v", file, link, err)
				continue
			}
			checked++
			if anchor == "" || info.IsDir() || !strings.HasSuffix(path, ".md") {
				continue
			}
			if !anchors(readFile(t, path))[anchor] {
				t.Errorf("%s: link %s: %s has no heading #%s", file, link, path, anchor)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d links checked: the link pattern no longer matches", checked)
	}
}

var variableRE = regexp.MustCompile("`([A-Z][A-Z0-9_]+)`")

// docs/configuration.md lists every environment variable the binary reads, as the configuration
// loaders report them.
func TestEverySettingDocumented(t *testing.T) {
	read := map[string]bool{}
	record := func(name string) (string, bool) { read[name] = true; return "", false }
	_, _ = config.Load(record)
	_, _ = config.LoadIngest(record)
	_, _ = config.LoadRoles(record)
	if len(read) < 30 {
		t.Fatalf("the loaders read only %d variables: %v", len(read), read)
	}
	documented := map[string]bool{}
	for _, m := range variableRE.FindAllStringSubmatch(readFile(t, "docs/configuration.md"), -1) {
		documented[m[1]] = true
	}
	for name := range read {
		if !documented[name] {
			t.Errorf("%s is read by the configuration but not in docs/configuration.md", name)
		}
	}
}
