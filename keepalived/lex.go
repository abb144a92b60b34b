package keepalived

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// pos is where a statement is: the file as named (the main file as given,
// an included one as resolved) and its line.
type pos struct {
	file string
	line int
}

func (p pos) String() string { return fmt.Sprintf("%s:%d", p.file, p.line) }

func (p pos) errorf(format string, a ...any) error {
	return fmt.Errorf("%s: "+format, append([]any{p}, a...)...)
}

// item is one piece of the token stream: a statement (words on a line up
// to a brace) or a brace on its own, as keepalived splits lines at '{'
// and '}' outside double quotes.
type item struct {
	pos   pos
	brace byte     // '{' or '}', or 0 for a statement
	raw   string   // the statement's text, for keywords that re-read it
	words []string // double-quoted strings are one word, quotes removed
}

// node is a statement with its block, if a '{' followed it.
type node struct {
	pos      pos
	raw      string
	words    []string
	hasBlock bool
	block    []*node
}

func (n *node) kw() string { return n.words[0] }

// args are the words after the keyword.
func (n *node) args() []string { return n.words[1:] }

const maxIncludeDepth = 32

type lexer struct {
	items   []item
	notices []string
	stack   []string // absolute paths of the files being read, for loops
}

// readFile appends the items of name (and of the files it includes).
func (l *lexer) readFile(name string, from *pos) error {
	abs, err := filepath.Abs(name)
	if err != nil {
		return err
	}
	for _, s := range l.stack {
		if s == abs {
			return from.errorf("include loop: %s includes itself", name)
		}
	}
	if len(l.stack) >= maxIncludeDepth {
		return from.errorf("includes nested deeper than %d", maxIncludeDepth)
	}
	f, err := os.Open(name)
	if err != nil {
		if from != nil {
			return from.errorf("include: %v", err)
		}
		return err
	}
	defer f.Close()
	l.stack = append(l.stack, abs)
	defer func() { l.stack = l.stack[:len(l.stack)-1] }()

	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	lineNo, cont := 0, ""
	for sc.Scan() {
		lineNo++
		text, more := decomment(strings.TrimRight(sc.Text(), "\r"))
		if more {
			// A trailing backslash continues the line.
			cont += text
			continue
		}
		text, cont = strings.TrimSpace(cont+text), ""
		if text == "" {
			continue
		}
		p := pos{name, lineNo}
		if pattern, ok := includeArg(text); ok {
			if err := l.include(pattern, name, p); err != nil {
				return err
			}
			continue
		}
		switch text[0] {
		case '$', '@', '~':
			return p.errorf("parameter definitions, conditional lines and ~SEQ/~LST are not supported by gvs")
		}
		if err := l.split(text, p); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// decomment cuts a '#' or '!' comment outside double quotes (\# and \!
// are the characters themselves) and reports a trailing backslash.
func decomment(s string) (string, bool) {
	var b strings.Builder
	quote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quote = !quote
		case c == '\\' && i+1 == len(s):
			return b.String(), true
		case c == '\\' && !quote && (s[i+1] == '#' || s[i+1] == '!'):
			i++
			c = s[i]
		case c == '\\':
			b.WriteByte(c)
			i++
			c = s[i]
		case !quote && (c == '#' || c == '!'):
			return b.String(), false
		}
		b.WriteByte(c)
	}
	return b.String(), false
}

// includeArg recognises include and its variants (includer, includem,
// includew, includeb, includea: gvs treats them alike).
func includeArg(text string) (string, bool) {
	kw, rest, _ := strings.Cut(strings.ReplaceAll(text, "\t", " "), " ")
	switch kw {
	case "include", "includer", "includem", "includew", "includeb", "includea":
		return strings.Trim(strings.TrimSpace(rest), `"`), true
	}
	return "", false
}

// include reads the files pattern names, relative to the directory of
// the including file (keepalived changes into it), in glob order. A name
// without wildcards must exist; a wildcard matching nothing is noted.
func (l *lexer) include(pattern, from string, p pos) error {
	if pattern == "" {
		return p.errorf("include: no file named")
	}
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(from), pattern)
	}
	for _, pat := range expandBraces(pattern) {
		names, err := filepath.Glob(pat)
		if err != nil {
			return p.errorf("include %s: %v", pat, err)
		}
		if len(names) == 0 {
			if !strings.ContainsAny(pat, "*?[") {
				return p.errorf("include %s: no such file", pat)
			}
			l.notices = append(l.notices, fmt.Sprintf("%s: include %s: matches no file", p, pat))
		}
		for _, n := range names {
			if err := l.readFile(n, &p); err != nil {
				return err
			}
		}
	}
	return nil
}

// expandBraces expands csh-style {a,b} alternatives, as glob(3) with
// GLOB_BRACE does.
func expandBraces(s string) []string {
	open := strings.IndexByte(s, '{')
	if open < 0 {
		return []string{s}
	}
	depth, start := 0, open+1
	var alts []string
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case ',':
			if depth == 1 {
				alts = append(alts, s[start:i])
				start = i + 1
			}
		case '}':
			depth--
			if depth == 0 {
				alts = append(alts, s[start:i])
				var out []string
				for _, a := range alts {
					out = append(out, expandBraces(s[:open]+a+s[i+1:])...)
				}
				return out
			}
		}
	}
	return []string{s}
}

// split cuts a line at braces outside double quotes and appends the
// pieces.
func (l *lexer) split(text string, p pos) error {
	for text != "" {
		cut, quote := -1, false
		for i := 0; i < len(text) && cut < 0; i++ {
			switch text[i] {
			case '"':
				quote = !quote
			case '{', '}':
				if !quote {
					cut = i
				}
			}
		}
		stmt := text
		if cut >= 0 {
			stmt = text[:cut]
		}
		if stmt = strings.TrimSpace(stmt); stmt != "" {
			words, err := splitWords(stmt)
			if err != nil {
				return p.errorf("%v", err)
			}
			l.items = append(l.items, item{pos: p, raw: stmt, words: words})
		}
		if cut < 0 {
			break
		}
		l.items = append(l.items, item{pos: p, brace: text[cut]})
		text = strings.TrimSpace(text[cut+1:])
	}
	return nil
}

// splitWords splits at blanks; a word starting with a double quote runs
// to the next one and loses the quotes.
func splitWords(s string) ([]string, error) {
	var words []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return words, nil
		}
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("unmatched quote in %q", s)
			}
			words = append(words, s[1:end+1])
			s = s[end+2:]
			continue
		}
		end := strings.IndexAny(s, " \t\"")
		if end < 0 {
			end = len(s)
		}
		words = append(words, s[:end])
		s = s[end:]
	}
}

// tree builds the statements' blocks: a statement followed by '{' (on its
// line or the next) owns what comes up to the matching '}'.
func tree(items []item) ([]*node, error) {
	var parse func(i int, opened *pos) ([]*node, int, error)
	parse = func(i int, opened *pos) ([]*node, int, error) {
		var out []*node
		for i < len(items) {
			it := items[i]
			switch it.brace {
			case '}':
				if opened == nil {
					return nil, 0, it.pos.errorf("unbalanced braces: '}' without '{'")
				}
				return out, i + 1, nil
			case '{':
				return nil, 0, it.pos.errorf("unbalanced braces: '{' without a keyword before it")
			}
			n := &node{pos: it.pos, raw: it.raw, words: it.words}
			out = append(out, n)
			i++
			if i < len(items) && items[i].brace == '{' {
				p := items[i].pos
				block, next, err := parse(i+1, &p)
				if err != nil {
					return nil, 0, err
				}
				n.hasBlock, n.block, i = true, block, next
			}
		}
		if opened != nil {
			return nil, 0, opened.errorf("unbalanced braces: '{' never closed")
		}
		return out, i, nil
	}
	nodes, _, err := parse(0, nil)
	return nodes, err
}
