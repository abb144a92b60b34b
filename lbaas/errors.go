package lbaas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// apiError is an answer other than success, worded as Octavia words it.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errorf(code int, format string, a ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, a...)}
}

func notFound(resource, id string) *apiError {
	return errorf(http.StatusNotFound, "%s %s not found.", resource, id)
}

func immutable(resource, id string) *apiError {
	return errorf(http.StatusConflict, "%s %s is immutable and cannot be updated.", resource, id)
}

func validation(format string, a ...any) *apiError {
	return errorf(http.StatusBadRequest, "Validation failure: "+format, a...)
}

func invalidOption(value, option string) *apiError {
	return errorf(http.StatusBadRequest, "%s is not a valid option for %s", value, option)
}

func invalidInput(field string, value any, why string) *apiError {
	return errorf(http.StatusBadRequest, "Invalid input for field/attribute %s. Value: '%v'. %s", field, value, why)
}

// unsupported is Octavia's ProviderUnsupportedOptionError (501).
func (s *Server) unsupported(format string, a ...any) *apiError {
	return errorf(http.StatusNotImplemented, "Provider '%s' does not support a requested option: %s",
		s.cfg.Provider, fmt.Sprintf(format, a...))
}

// writeError answers as Octavia's API does: a JSON fault.
func writeError(w http.ResponseWriter, e *apiError) {
	fault := "Client"
	if e.code >= 500 && e.code != http.StatusNotImplemented {
		fault = "Server"
	}
	writeJSON(w, e.code, map[string]any{"faultcode": fault, "faultstring": e.msg, "debuginfo": nil})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"faultcode":"Server","faultstring":"encoding the answer failed","debuginfo":null}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}

// object is the resource of a request body ({"loadbalancer": {...}}),
// read field by field: the first field that fails makes the error, and
// every reader after it returns zero values.
type object struct {
	root   string
	fields map[string]json.RawMessage
	err    *apiError
}

// readObject reads the body's envelope root; known are the attributes
// the resource has (others are refused as wsme refuses them).
func readObject(r *http.Request, root string, known ...string) (*object, *apiError) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "reading the request body: %v", err)
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, errorf(http.StatusBadRequest, "The request body is not valid JSON: %v", err)
	}
	raw, ok := env[root]
	if !ok || isNull(raw) {
		return nil, invalidInput(root, "None", "Mandatory field missing.")
	}
	return parseObject(root, raw, known)
}

func parseObject(root string, raw json.RawMessage, known []string) (*object, *apiError) {
	o := &object{root: root}
	if err := json.Unmarshal(raw, &o.fields); err != nil || o.fields == nil {
		return nil, invalidInput(root, shown(raw), "Value should be an object")
	}
	var unknown []string
	for k := range o.fields {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, errorf(http.StatusBadRequest, "Unknown attribute for argument %s: %s", root, strings.Join(unknown, ", "))
	}
	return o, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// shown is a value as the error messages quote it.
func shown(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if isNull(raw) {
		return "None"
	}
	return string(bytes.TrimSpace(raw))
}

func (o *object) has(name string) bool {
	_, ok := o.fields[name]
	return ok
}

// null says whether name is given as null.
func (o *object) null(name string) bool {
	raw, ok := o.fields[name]
	return ok && isNull(raw)
}

func (o *object) fail(e *apiError) {
	if o.err == nil {
		o.err = e
	}
}

// get decodes name into v; it reports whether a value (not null) was given.
func (o *object) get(name string, v any, typ string, required bool) bool {
	if o.err != nil {
		return false
	}
	raw, ok := o.fields[name]
	if !ok || isNull(raw) {
		if required {
			o.fail(invalidInput(name, "None", "Mandatory field missing."))
		}
		return false
	}
	if err := json.Unmarshal(raw, v); err != nil {
		o.fail(invalidInput(name, shown(raw), fmt.Sprintf("Wrong type. Expected '%s', got '%s'", typ, jsonType(raw))))
		return false
	}
	return true
}

func jsonType(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "None"
	}
	switch raw[0] {
	case '"':
		return "str"
	case '{':
		return "dict"
	case '[':
		return "list"
	case 't', 'f':
		return "bool"
	case 'n':
		return "None"
	}
	if bytes.ContainsAny(raw, ".eE") {
		return "float"
	}
	return "int"
}

// str reads a string of at most 255 characters.
func (o *object) str(name string, required bool) (string, bool) {
	var s string
	if !o.get(name, &s, "str", required) {
		return "", false
	}
	if len(s) > 255 {
		o.fail(invalidInput(name, s, "Value should have a maximum character requirement of 255"))
		return "", false
	}
	return s, true
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

func (o *object) uuid(name string, required bool) (string, bool) {
	var s string
	if !o.get(name, &s, "str", required) {
		return "", false
	}
	if !uuidRE.MatchString(s) {
		o.fail(invalidInput(name, s, "Value should be UUID format"))
		return "", false
	}
	return strings.ToLower(s), true
}

func (o *object) enum(name string, required bool, values ...string) (string, bool) {
	var s string
	if !o.get(name, &s, "str", required) {
		return "", false
	}
	if !slices.Contains(values, s) {
		o.fail(invalidInput(name, s, "Value should be one of: "+strings.Join(values, ", ")))
		return "", false
	}
	return s, true
}

// integer reads an int within [lo, hi].
func (o *object) integer(name string, required bool, lo, hi int) (int, bool) {
	var f float64
	if !o.get(name, &f, "int", required) {
		return 0, false
	}
	n := int(f)
	if float64(n) != f {
		o.fail(invalidInput(name, shown(o.fields[name]), "Wrong type. Expected 'int', got 'float'"))
		return 0, false
	}
	if n < lo {
		o.fail(invalidInput(name, n, fmt.Sprintf("Value should be greater or equal to %d", lo)))
		return 0, false
	}
	if n > hi {
		o.fail(invalidInput(name, n, fmt.Sprintf("Value should be lower or equal to %d", hi)))
		return 0, false
	}
	return n, true
}

func (o *object) boolean(name string) (bool, bool) {
	var b bool
	ok := o.get(name, &b, "bool", false)
	return b, ok
}

func (o *object) addr(name string, required bool) (netip.Addr, bool) {
	var s string
	if !o.get(name, &s, "str", required) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		o.fail(invalidInput(name, s, "Value should be IPv4 or IPv6 format"))
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func (o *object) tags(name string) ([]string, bool) {
	var t []string
	if !o.get(name, &t, "list", false) {
		return nil, false
	}
	for _, s := range t {
		if len(s) > 255 {
			o.fail(invalidInput(name, s, "Value should have a maximum character requirement of 255"))
			return nil, false
		}
	}
	if t == nil {
		t = []string{}
	}
	return t, true
}

// emptyOrUnsupported refuses an attribute this provider has no use for
// when it is given a value other than null, "", [], {} or false.
func (o *object) emptyOrUnsupported(s *Server, names ...string) {
	for _, n := range names {
		raw, ok := o.fields[n]
		if !ok || o.err != nil {
			continue
		}
		switch string(bytes.TrimSpace(raw)) {
		case "null", `""`, "[]", "{}", "false":
			continue
		}
		o.fail(s.unsupported("%s (an L4 LVS provider)", n))
	}
}
