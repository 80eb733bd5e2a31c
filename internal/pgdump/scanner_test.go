package pgdump

import (
	"errors"
	"io"
	"strings"
	"testing"
)

type scanned struct {
	kind    Kind
	line    int
	table   string
	columns string
	rows    string // COPY text, rows joined
}

// scanAll reads a whole dump, consuming COPY rows, and returns what it saw.
func scanAll(dump string) ([]scanned, error) {
	sc := NewScanner(strings.NewReader(dump))
	var out []scanned
	for {
		st, err := sc.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		s := scanned{kind: st.Kind, line: st.Line, table: st.Table, columns: strings.Join(st.Columns, ",")}
		switch st.Kind {
		case KindCopy:
			data, err := io.ReadAll(sc.CopyRows(st))
			if err != nil {
				return out, err
			}
			s.rows = string(data)
		case KindInsert:
			for _, r := range st.Rows {
				s.rows += string(r)
			}
		}
		out = append(out, s)
	}
}

func TestScannerStatements(t *testing.T) {
	tests := []struct {
		name string
		dump string
		want []scanned
	}{
		{
			name: "pg_dump preamble and DDL are skipped",
			dump: "--\n-- PostgreSQL database dump\n--\n\n\\restrict abcDEF123\n\nSET statement_timeout = 0;\n" +
				"SET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n" +
				"SELECT pg_catalog.set_config('search_path', '', false);\nSET default_tablespace = '';\n\n" +
				"CREATE TABLE public.ports (\n    code text NOT NULL,\n    name text NOT NULL\n);\n\n" +
				"ALTER TABLE ONLY public.ports\n    ADD CONSTRAINT ports_pkey PRIMARY KEY (code);\n" +
				"CREATE INDEX prices_idx ON public.prices USING btree (orig_code);\n\\unrestrict abcDEF123\n" +
				"CREATE TRIGGER t AFTER INSERT ON public.prices FOR EACH STATEMENT EXECUTE FUNCTION public.f();\n",
			want: []scanned{
				{kind: KindSkip, line: 7}, {kind: KindSkip, line: 8}, {kind: KindSkip, line: 9},
				{kind: KindSkip, line: 10}, {kind: KindSkip, line: 11},
				{kind: KindSkip, line: 13, table: "ports"}, {kind: KindSkip, line: 18, table: "ports"},
				{kind: KindSkip, line: 20, table: "prices"}, {kind: KindSkip, line: 22, table: "prices"},
			},
		},
		{
			name: "COPY block",
			dump: "COPY public.prices (orig_code, dest_code, day, price) FROM stdin;\nA\tB\t2021-01-01\t5\nA\tB\t2021-01-02\t\\N\n\\.\nSET x = 1;\n",
			want: []scanned{
				{kind: KindCopy, line: 1, table: "prices", columns: "orig_code,dest_code,day,price",
					rows: "A\tB\t2021-01-01\t5\nA\tB\t2021-01-02\t\\N\n"},
				{kind: KindSkip, line: 5},
			},
		},
		{
			name: "COPY with quoted identifiers and no column list",
			dump: "COPY \"regions\" FROM stdin;\nr\tR\t\\N\n\\.\n",
			want: []scanned{{kind: KindCopy, line: 1, table: "regions", columns: "slug,name,parent_slug", rows: "r\tR\t\\N\n"}},
		},
		{
			name: "INSERT forms",
			dump: "INSERT INTO public.regions VALUES ('a', 'It''s; here', NULL);\n" +
				"INSERT INTO public.ports (code, name, parent_slug) VALUES\n\t('X', E'tab\\there', 'a'),\n\t('Y', 'new\nline', 'a');\n" +
				"INSERT INTO prices (orig_code, dest_code, day, price) VALUES ('X', 'Y', '2021-01-01'::date, -5);\n",
			want: []scanned{
				{kind: KindInsert, line: 1, table: "regions", columns: "slug,name,parent_slug", rows: "a\tIt's; here\t\\N\n"},
				{kind: KindInsert, line: 2, table: "ports", columns: "code,name,parent_slug",
					rows: "X\ttab\\there\ta\nY\tnew\\nline\ta\n"},
				{kind: KindInsert, line: 6, table: "prices", columns: "orig_code,dest_code,day,price", rows: "X\tY\t2021-01-01\t-5\n"},
			},
		},
		{
			name: "comments inside and between statements",
			dump: "/* block\n/* nested */ comment */ SET a = 1; -- trailing\nSET b -- mid\n = 2; SET c = 3;\n",
			want: []scanned{{kind: KindSkip, line: 2}, {kind: KindSkip, line: 3}, {kind: KindSkip, line: 4}},
		},
		{
			name: "last line without newline",
			dump: "SET a = 1;\n-- end",
			want: []scanned{{kind: KindSkip, line: 1}},
		},
		{name: "empty", dump: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scanAll(tt.dump)
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d statements %+v, want %d %+v", len(got), got, len(tt.want), tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("statement %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestScannerErrors(t *testing.T) {
	tests := []struct {
		name, dump string
		line       int
		msg        string
	}{
		{"unknown statement", "SET a = 1;\n\nDROP TABLE prices;\n", 3, `unsupported statement "DROP TABLE prices;"`},
		{"function", "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n", 1, "migrations own the schema"},
		{"unknown table", "COPY public.users (id) FROM stdin;\n1\n\\.\n", 1, `table "users" is not part of the rates schema`},
		{"other schema", "COPY other.prices (price) FROM stdin;\n\\.\n", 1, "only tables of schema public"},
		{"unknown column", "COPY prices (orig_code, cost) FROM stdin;\n\\.\n", 1, `table prices has no column "cost"`},
		{"column twice", "COPY prices (price, price) FROM stdin;\n\\.\n", 1, `column "price" listed twice`},
		{"copy to stdout", "COPY prices TO stdout;\n", 1, "only COPY ... FROM stdin"},
		{"wrong field count", "COPY regions (slug, name, parent_slug) FROM stdin;\na\tb\t\\N\na\tb\n\\.\n", 3, "has 2 fields, expected 3"},
		{"truncated copy", "SET a = 1;\nCOPY regions (slug, name, parent_slug) FROM stdin;\na\tb\t\\N\n", 2, "no end marker"},
		{"truncated copy mid-line", "COPY regions (slug, name, parent_slug) FROM stdin;\na\tb\t\\N\na\tb", 3, "no end marker"},
		{"truncated statement", "SET a = 1;\nINSERT INTO regions VALUES ('a', 'b',\n", 2, "not terminated"},
		{"unterminated string", "INSERT INTO regions VALUES ('a, 'b', NULL);\n", 1, "not terminated"},
		{"meta-command", "\\connect other\n", 1, `unsupported psql meta-command \connect`},
		{"restrict without key", "\\restrict\n", 1, "takes exactly one key"},
		{"latin1 dump", "SET client_encoding = 'LATIN1';\n", 1, `client_encoding "LATIN1" is not supported`},
		{"old string syntax", "SET standard_conforming_strings = off;\n", 1, "standard_conforming_strings must be on"},
		{"insert value count", "INSERT INTO regions VALUES ('a', 'b');\n", 1, "2 values for 3 columns"},
		{"insert expression", "INSERT INTO prices VALUES ('a', 'b', now(), 1);\n", 1, `unsupported value "now"`},
		{"insert select", "INSERT INTO prices SELECT * FROM x;\n", 1, "only INSERT ... VALUES"},
		{"text after copy", "COPY regions FROM stdin; SET a = 1;\n\\.\n", 1, "unexpected text after COPY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scanAll(tt.dump)
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("error = %v, want a LineError", err)
			}
			if le.Line != tt.line || !strings.Contains(le.Error(), tt.msg) {
				t.Fatalf("error = %q (line %d), want line %d containing %q", le, le.Line, tt.line, tt.msg)
			}
		})
	}
}

func TestLongLines(t *testing.T) {
	long := strings.Repeat("x", 200<<10) // longer than the reader's 64 KiB buffer
	dump := "COPY regions (slug, name, parent_slug) FROM stdin;\na\t" + long + "\t\\N\n\\.\n" +
		"INSERT INTO regions VALUES ('b', '" + long + "', NULL);\n"
	got, err := scanAll(dump)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got[0].rows) != len(long)+6 || len(got[1].rows) != len(long)+6 {
		t.Fatalf("long lines not read whole: %d statements", len(got))
	}
}

func TestStringValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{`'plain'`, "plain"},
		{`'it''s'`, "it's"},
		{`'back\slash'`, `back\slash`},
		{`E'a\tb\nc\\d\'e'`, "a\tb\nc\\d'e"},
		{`E'\101\x42\x4'`, "AB\x04"},
		{`$$dollar 'quoted'$$`, "dollar 'quoted'"},
		{`$tag$with $$ inside$tag$`, "with $$ inside"},
	}
	for _, tt := range tests {
		lx := lexer{buf: []byte(tt.in + " ")}
		tok, err := lx.next()
		if err != nil || tok.kind != tokString {
			t.Fatalf("lex %s: %v %+v", tt.in, err, tok)
		}
		got, err := stringValue(lx.buf, tok)
		if err != nil || string(got) != tt.want {
			t.Errorf("stringValue(%s) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// FuzzScanner feeds arbitrary dumps to the scanner: it must never panic or loop, every error
// must name a line within the input, and accepted COPY rows keep the column count.
func FuzzScanner(f *testing.F) {
	for _, seed := range []string{
		"SET a = 1;\nCOPY regions (slug, name, parent_slug) FROM stdin;\na\tb\t\\N\n\\.\n",
		"INSERT INTO ports VALUES ('X', E'a\\tb', 'r'), ('Y', 'it''s', 'r');\n",
		"/* c */ -- d\n\\restrict k\nCREATE TABLE public.prices (a int);\nALTER TABLE ONLY prices ADD x;\n",
		"COPY prices FROM stdin;\n\\.",
		"INSERT INTO regions VALUES ($$a;b$$, 'c', NULL);",
		"'", "$a$", "/*", "COPY", ";;;",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, dump string) {
		lines := strings.Count(dump, "\n") + 1
		got, err := scanAll(dump)
		if err != nil {
			var le *LineError
			if errors.As(err, &le) && (le.Line < 1 || le.Line > lines) {
				t.Fatalf("error names line %d of a %d-line input: %v", le.Line, lines, err)
			}
			return
		}
		for _, s := range got {
			if s.kind == KindCopy || s.kind == KindInsert {
				want := strings.Count(s.columns, ",") + 1
				for _, row := range strings.SplitAfter(s.rows, "\n") {
					if row == "" {
						continue
					}
					if n := strings.Count(row, "\t") + 1; n != want || !strings.HasSuffix(row, "\n") {
						t.Fatalf("row %q has %d fields, want %d", row, n, want)
					}
				}
			}
		}
	})
}
