package pgdump

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// stmt reads the tokens of one statement.
type stmt struct {
	buf  []byte
	toks []token
	i    int
}

func (p *stmt) done() bool { return p.i >= len(p.toks) }

func (p *stmt) text(t token) string { return string(p.buf[t.start:t.end]) }

// keyword reports whether the next token is the given keyword (case-insensitive) and takes it.
func (p *stmt) keyword(kw string) bool {
	if p.done() || p.toks[p.i].kind != tokWord || !strings.EqualFold(p.text(p.toks[p.i]), kw) {
		return false
	}
	p.i++
	return true
}

// punct reports whether the next token is the punctuation c and takes it.
func (p *stmt) punct(c byte) bool {
	if p.done() || p.toks[p.i].kind != tokPunct || p.buf[p.toks[p.i].start] != c {
		return false
	}
	p.i++
	return true
}

// ident takes an identifier: an unquoted word folds to lower case, a quoted one keeps its case.
func (p *stmt) ident() (string, bool) {
	if p.done() {
		return "", false
	}
	t := p.toks[p.i]
	switch t.kind {
	case tokWord:
		p.i++
		return strings.ToLower(p.text(t)), true
	case tokQIdent:
		p.i++
		return strings.ReplaceAll(string(p.buf[t.start+1:t.end-1]), `""`, `"`), true
	}
	return "", false
}

// tableName takes [schema.]table and returns the table, which must be in the public schema.
func (p *stmt) tableName() (string, error) {
	name, ok := p.ident()
	if !ok {
		return "", errors.New("expected a table name")
	}
	if p.punct('.') {
		schema := name
		if name, ok = p.ident(); !ok {
			return "", errors.New("expected a table name after the schema")
		}
		if schema != "public" {
			return "", fmt.Errorf("table %s.%s: only tables of schema public are loaded", schema, name)
		}
	}
	return name, nil
}

func knownTable(name string) error {
	if _, ok := tables[name]; !ok {
		return fmt.Errorf("table %q is not part of the rates schema (regions, ports, prices)", name)
	}
	return nil
}

// columnList takes ( col, ... ) and checks the names against the table.
func (p *stmt) columnList(table string) ([]string, error) {
	var cols []string
	seen := map[string]bool{}
	for {
		col, ok := p.ident()
		if !ok {
			return nil, errors.New("expected a column name")
		}
		if !contains(tables[table], col) && !contains(lineageColumns[table], col) {
			return nil, fmt.Errorf("table %s has no column %q", table, col)
		}
		if seen[col] {
			return nil, fmt.Errorf("column %q listed twice", col)
		}
		seen[col] = true
		cols = append(cols, col)
		if p.punct(')') {
			return cols, nil
		}
		if !p.punct(',') {
			return nil, errors.New("expected ',' or ')' in the column list")
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// classify decides what a complete statement (its last token is ';') means to the seeder.
func classify(buf []byte, toks []token) (*Statement, error) {
	p := &stmt{buf: buf, toks: toks[:len(toks)-1]} // without the ';'
	if p.done() {
		return &Statement{Kind: KindSkip}, nil // an empty statement
	}
	switch {
	case p.keyword("SET"):
		return p.set()
	case p.keyword("SELECT"):
		// pg_dump empties search_path this way; the seeder names its tables itself.
		if p.keyword("pg_catalog") && p.punct('.') && p.keyword("set_config") {
			return &Statement{Kind: KindSkip}, nil
		}
	case p.keyword("CREATE"):
		return p.create()
	case p.keyword("ALTER"):
		if p.keyword("TABLE") {
			p.keyword("ONLY")
			if p.keyword("IF") && !p.keyword("EXISTS") {
				break
			}
			return p.ownedDDL()
		}
	case p.keyword("COPY"):
		return p.copy()
	case p.keyword("INSERT"):
		return p.insert()
	}
	return nil, fmt.Errorf("unsupported statement %q", summary(buf, toks))
}

func summary(buf []byte, toks []token) string {
	text := string(bytes.Join(bytes.Fields(buf[toks[0].start:toks[len(toks)-1].end]), []byte{' '}))
	return truncateText(text, 60)
}

// set accepts session settings; two would change how the dump's text must be read, so they
// are checked rather than ignored.
func (p *stmt) set() (*Statement, error) {
	if !p.keyword("SESSION") {
		p.keyword("LOCAL")
	}
	name, ok := p.ident()
	if !ok {
		return nil, errors.New("SET without a setting name")
	}
	if !p.punct('=') && !p.keyword("TO") {
		return &Statement{Kind: KindSkip}, nil // e.g. SET TIME ZONE ...
	}
	var value string
	if !p.done() {
		t := p.toks[p.i]
		value = p.text(t)
		if t.kind == tokString {
			v, err := stringValue(p.buf, t)
			if err != nil {
				return nil, err
			}
			value = string(v)
		}
	}
	switch name {
	case "client_encoding":
		if v := strings.ToUpper(strings.ReplaceAll(value, "-", "")); v != "UTF8" && v != "UNICODE" {
			return nil, fmt.Errorf("client_encoding %q is not supported: the seeder reads UTF8 dumps", value)
		}
	case "standard_conforming_strings":
		if !strings.EqualFold(value, "on") {
			return nil, errors.New("standard_conforming_strings must be on (dumps of PostgreSQL 9.1 and later)")
		}
	}
	return &Statement{Kind: KindSkip}, nil
}

// create skips the DDL of the tables the migrations own and refuses everything else.
func (p *stmt) create() (*Statement, error) {
	switch {
	case p.keyword("TABLE"):
		if p.keyword("IF") && !(p.keyword("NOT") && p.keyword("EXISTS")) {
			return nil, errors.New("malformed CREATE TABLE IF NOT EXISTS")
		}
		return p.ownedDDL()
	case p.keyword("UNIQUE"):
		if !p.keyword("INDEX") {
			break
		}
		fallthrough
	case p.keyword("INDEX"):
		for !p.done() && !p.keyword("ON") {
			p.i++
		}
		p.keyword("ONLY")
		return p.ownedDDL()
	case p.keyword("TRIGGER"):
		// Dumps of this service's own tables carry its data-generation triggers.
		for !p.done() && !p.keyword("ON") {
			p.i++
		}
		return p.ownedDDL()
	}
	return nil, fmt.Errorf("unsupported statement %q: the migrations own the schema", summary(p.buf, p.toks))
}

func (p *stmt) ownedDDL() (*Statement, error) {
	table, err := p.tableName()
	if err != nil {
		return nil, err
	}
	if err := knownTable(table); err != nil {
		return nil, err
	}
	return &Statement{Kind: KindSkip, Table: table}, nil
}

func (p *stmt) copy() (*Statement, error) {
	table, cols, _, err := p.target()
	if err != nil {
		return nil, err
	}
	if !p.keyword("FROM") || !p.keyword("stdin") || !p.done() {
		return nil, errors.New("only COPY ... FROM stdin is supported")
	}
	return &Statement{Kind: KindCopy, Table: table, Columns: cols}, nil
}

// target reads the table a COPY or INSERT loads and its optional column list (all the table's
// columns when there is none); listed says there was one.
func (p *stmt) target() (table string, cols []string, listed bool, err error) {
	table, err = p.tableName()
	if err != nil {
		return "", nil, false, err
	}
	if err := knownTable(table); err != nil {
		return "", nil, false, err
	}
	cols = tables[table]
	if p.punct('(') {
		if cols, err = p.columnList(table); err != nil {
			return "", nil, false, err
		}
		listed = true
	}
	return table, cols, listed, nil
}

// insert reads INSERT INTO table [(cols)] VALUES (...), ... as pg_dump --inserts,
// --column-inserts and --rows-per-insert write it.
func (p *stmt) insert() (*Statement, error) {
	if !p.keyword("INTO") {
		return nil, errors.New("expected INTO after INSERT")
	}
	table, cols, listed, err := p.target()
	if err != nil {
		return nil, err
	}
	// Without a column list, a row may also carry the lineage columns of a dump of this
	// service's own database; the first row decides.
	counts := []int{len(cols)}
	if extra := lineageColumns[table]; !listed && len(extra) > 0 {
		counts = append(counts, len(cols)+len(extra))
	}
	if !p.keyword("VALUES") {
		return nil, errors.New("only INSERT ... VALUES is supported")
	}
	st := &Statement{Kind: KindInsert, Table: table, Columns: cols}
	for {
		row, n, err := p.valuesRow(counts...)
		if err == nil && len(st.Rows) == 0 && n != len(cols) {
			st.Columns = append(slices.Clone(cols), lineageColumns[table]...)
		}
		if err == nil {
			counts = []int{n}
		}
		if err != nil {
			return nil, fmt.Errorf("row %d of INSERT INTO %s: %w", len(st.Rows)+1, table, err)
		}
		st.Rows = append(st.Rows, row)
		if p.done() {
			return st, nil
		}
		if !p.punct(',') {
			return nil, fmt.Errorf("unexpected %q after row %d of INSERT INTO %s", p.text(p.toks[p.i]), len(st.Rows), table)
		}
	}
}

// valuesRow reads ( literal, ... ) into one line of COPY text format; the number of values
// must be one of columns, and is returned.
func (p *stmt) valuesRow(columns ...int) ([]byte, int, error) {
	if !p.punct('(') {
		return nil, 0, errors.New("expected '('")
	}
	var line []byte
	for n := 1; ; n++ {
		if n > 1 {
			line = append(line, '\t')
		}
		var err error
		if line, err = p.literal(line); err != nil {
			return nil, 0, err
		}
		if p.punct(')') {
			if !slices.Contains(columns, n) {
				return nil, 0, fmt.Errorf("%d values for %d columns", n, columns[0])
			}
			return append(line, '\n'), n, nil
		}
		if !p.punct(',') {
			return nil, 0, errors.New("expected ',' or ')' between values")
		}
	}
}

// literal appends one constant in COPY text form: NULL as \N, everything else escaped.
func (p *stmt) literal(line []byte) ([]byte, error) {
	if p.done() {
		return nil, errors.New("expected a value")
	}
	negative := p.punct('-')
	if p.done() {
		return nil, errors.New("expected a value")
	}
	t := p.toks[p.i]
	p.i++
	switch {
	case t.kind == tokNumber:
		if negative {
			line = append(line, '-')
		}
		line = append(line, p.buf[t.start:t.end]...)
	case negative:
		return nil, fmt.Errorf("unexpected %q after '-'", p.text(t))
	case t.kind == tokWord && strings.EqualFold(p.text(t), "NULL"):
		return append(line, `\N`...), nil
	case t.kind == tokWord && (strings.EqualFold(p.text(t), "true") || strings.EqualFold(p.text(t), "false")):
		line = append(line, strings.ToLower(p.text(t))...)
	case t.kind == tokString:
		v, err := stringValue(p.buf, t)
		if err != nil {
			return nil, err
		}
		line = appendCopyEscaped(line, v)
	default:
		return nil, fmt.Errorf("unsupported value %q", truncateText(p.text(t), 40))
	}
	// An explicit cast such as '2021-01-01'::date changes nothing for COPY.
	if p.punct(':') {
		if !p.punct(':') {
			return nil, errors.New("expected '::' cast")
		}
		if _, err := p.tableName(); err != nil {
			return nil, errors.New("expected a type name after '::'")
		}
	}
	return line, nil
}

// appendCopyEscaped writes v in COPY text format, escaping what would end a field or row.
func appendCopyEscaped(line, v []byte) []byte {
	for _, c := range v {
		switch c {
		case '\\':
			line = append(line, `\\`...)
		case '\t':
			line = append(line, `\t`...)
		case '\n':
			line = append(line, `\n`...)
		case '\r':
			line = append(line, `\r`...)
		default:
			line = append(line, c)
		}
	}
	return line
}
