package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// docsSections converts the Markdown docs to man sections: # to .SH,
// ## and ### to .SS, fenced code to no-fill blocks, "- " items to
// bulleted paragraphs, `code` to bold; sections named "Tests" (about the
// repository's tests) are left out.
func docsSections(root string, docs []string) (string, error) {
	var w strings.Builder
	for _, d := range docs {
		b, err := os.ReadFile(filepath.Join(root, d))
		if err != nil {
			return "", err
		}
		mdToRoff(&w, string(b), filepath.Base(d))
	}
	return w.String(), nil
}

var (
	codeSpan = regexp.MustCompile("`([^`]*)`")
	link     = regexp.MustCompile(`\[([^\]]+)\]\(([^)]+)\)`)
	strong   = regexp.MustCompile(`\*\*([^*]+)\*\*`)
)

// inline escapes a line of Markdown prose for roff.
func inline(s string) string {
	s = link.ReplaceAllString(s, "$1 ($2)")
	s = strong.ReplaceAllString(s, "`$1`")
	var out strings.Builder
	last := 0
	for _, m := range codeSpan.FindAllStringSubmatchIndex(s, -1) {
		out.WriteString(escText(s[last:m[0]]))
		out.WriteString(`\fB` + escText(s[m[2]:m[3]]) + `\fR`)
		last = m[1]
	}
	out.WriteString(escText(s[last:]))
	r := out.String()
	if strings.HasPrefix(r, ".") || strings.HasPrefix(r, "'") {
		r = `\&` + r
	}
	return r
}

func escText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	return strings.ReplaceAll(s, "-", `\-`)
}

func mdToRoff(w *strings.Builder, md, name string) {
	lines := strings.Split(md, "\n")
	skip := false
	inCode := false
	para := false // inside a paragraph or item: a blank line ends it
	for _, l := range lines {
		if strings.HasPrefix(l, "```") {
			if !inCode {
				if !skip {
					w.WriteString(".PP\n.RS 4\n.nf\n")
				}
				inCode = true
			} else {
				if !skip {
					w.WriteString(".fi\n.RE\n")
				}
				inCode, para = false, false
			}
			continue
		}
		if inCode {
			if !skip {
				r := strings.ReplaceAll(l, `\`, `\e`)
				if strings.HasPrefix(r, ".") || strings.HasPrefix(r, "'") {
					r = `\&` + r
				}
				w.WriteString(r + "\n")
			}
			continue
		}
		if h, ok := strings.CutPrefix(l, "# "); ok {
			skip = false
			w.WriteString(".SH \"" + strings.ToUpper(inline(h)) + "\"\n")
			w.WriteString("(" + escText(name) + ")\n")
			para = false
			continue
		}
		if h, ok := strings.CutPrefix(strings.TrimLeft(l, "#"), " "); ok && strings.HasPrefix(l, "##") {
			skip = strings.TrimSpace(h) == "Tests"
			if !skip {
				w.WriteString(".SS \"" + inline(h) + "\"\n")
			}
			para = false
			continue
		}
		if skip {
			continue
		}
		t := strings.TrimSpace(l)
		switch {
		case t == "":
			para = false
		case strings.HasPrefix(l, "- ") || strings.HasPrefix(l, "* "):
			w.WriteString(".IP \\(bu 2\n" + inline(t[2:]) + "\n")
			para = true
		default:
			if !para {
				w.WriteString(".PP\n")
				para = true
			}
			w.WriteString(inline(t) + "\n")
		}
	}
}
