package ipvsadm

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"gvs/api"
)

// RestoreError is a bad line of -R input: its number (from 1), its text
// and what is wrong with it.
type RestoreError struct {
	Line int
	Text string
	Err  error
}

func (e *RestoreError) Error() string {
	return fmt.Sprintf("line %d: %s", e.Line, e.Err.Error())
}

func (e *RestoreError) Unwrap() error { return e.Err }

// ExitCode is the exit status of the line's error.
func (e *RestoreError) ExitCode() int {
	if x, ok := e.Err.(interface{ ExitCode() int }); ok {
		return x.ExitCode()
	}
	return 1
}

// ParseRestore reads ipvsadm -R input with the zero Parser.
func ParseRestore(r io.Reader) ([]*Command, error) { return Parser{}.ParseRestore(r) }

// ParseRestore reads ipvsadm -R input (ipvsadm-save output): each line is
// the arguments of one command, split at blanks as ipvsadm's config_stream
// does (no quoting); words "ipvsadm" (and the program name) are dropped,
// so lines may start with the command name; blank lines are skipped.
//
// It is all or nothing: the first bad line gives a *RestoreError naming it
// and no command. A line that is itself -R is bad (ipvsadm refuses to
// nest restores). Unlike ipvsadm, whose config_stream means to skip
// "#" comments but never does, a line whose first word starts with '#' is
// a comment.
func (p Parser) ParseRestore(r io.Reader) ([]*Command, error) {
	var cmds []*Command
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		var args []string
		for _, w := range strings.FieldsFunc(line, func(r rune) bool {
			return r == ' ' || r == '\t' || r == '\r'
		}) {
			if w == "ipvsadm" || w == p.program() {
				continue
			}
			args = append(args, w)
		}
		if len(args) == 0 || strings.HasPrefix(args[0], "#") {
			continue
		}
		c, err := p.Parse(args)
		if err != nil {
			return nil, &RestoreError{Line: n, Text: line, Err: err}
		}
		if c.Kind == KindRestore {
			return nil, &RestoreError{Line: n, Text: line, Err: p.tryHelp()}
		}
		cmds = append(cmds, c)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return cmds, nil
}

// RestoreOps turns restore commands into one batch: the operations, and
// for each the index in cmds of its command (commands that change no
// rule, such as -L, make no operation).
func RestoreOps(cmds []*Command) (ops []api.Op, cmdIndex []int, err error) {
	ops = make([]api.Op, 0, len(cmds))
	cmdIndex = make([]int, 0, len(cmds))
	for i, c := range cmds {
		op, ok, err := c.Op()
		if err != nil {
			return nil, nil, err
		}
		if ok {
			ops = append(ops, op)
			cmdIndex = append(cmdIndex, i)
		}
	}
	return ops, cmdIndex, nil
}
