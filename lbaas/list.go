package lbaas

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const maxLimit = 1000 // Octavia's pagination_max_limit default

// query parameters that are not filters
var listParams = map[string]bool{"limit": true, "marker": true, "page_reverse": true, "sort": true,
	"sort_key": true, "sort_dir": true, "fields": true, "tags": true, "tags-any": true,
	"not-tags": true, "not-tags-any": true}

type sortKey struct {
	key  string
	desc bool
}

// list answers a list request over items (each with "id"): filters by
// field, tags, sort, pagination (limit, marker, page_reverse) with
// links, and fields selection, as Octavia's list calls do.
func list(w http.ResponseWriter, r *http.Request, collection string, items []view) *apiError {
	q := r.URL.Query()
	keys, e := sortKeys(q, items)
	if e != nil {
		return e
	}
	slices.SortStableFunc(items, func(a, b view) int {
		for _, k := range keys {
			c := compareValues(a[k.key], b[k.key])
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})

	limit := 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return errorf(http.StatusBadRequest, "Supplied pagination limit '%s' is not valid.", s)
		}
		limit = min(n, maxLimit)
	}
	reverse := false
	if s := q.Get("page_reverse"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errorf(http.StatusBadRequest, "Invalid input for field/attribute page_reverse. Value: '%s'. Wrong type.", s)
		}
		reverse = b
	}
	markerAt := -1
	if m := q.Get("marker"); m != "" {
		markerAt = slices.IndexFunc(items, func(v view) bool { return v["id"] == m })
		if markerAt < 0 {
			return errorf(http.StatusBadRequest, "Supplied pagination marker '%s' is not valid.", m)
		}
	}

	// Filter, keeping each item's place in the sorted whole.
	type placed struct {
		at int
		v  view
	}
	var matched []placed
	for i, v := range items {
		if match(v, q) {
			matched = append(matched, placed{i, v})
		}
	}
	// The window: after the marker (before it with page_reverse), at
	// most limit items.
	lo, hi := 0, len(matched)
	if markerAt >= 0 {
		cut := slices.IndexFunc(matched, func(p placed) bool { return p.at > markerAt })
		if cut < 0 {
			cut = len(matched)
		}
		if reverse {
			hi = cut
			if hi > 0 && matched[hi-1].at == markerAt {
				hi--
			}
		} else {
			lo = cut
		}
	}
	if limit > 0 && hi-lo > limit {
		if reverse && markerAt >= 0 {
			lo = hi - limit
		} else {
			hi = lo + limit
		}
	}
	page := []view{}
	for _, p := range matched[lo:hi] {
		page = append(page, p.v)
	}

	links := []view{}
	if limit > 0 && len(page) > 0 {
		if hi < len(matched) {
			links = append(links, view{"rel": "next", "href": pageURL(r, page[len(page)-1]["id"].(string), false)})
		}
		if lo > 0 {
			links = append(links, view{"rel": "previous", "href": pageURL(r, page[0]["id"].(string), true)})
		}
	}
	if fs := fieldList(q); len(fs) > 0 {
		for i, v := range page {
			sel := view{}
			for _, f := range fs {
				if x, ok := v[f]; ok {
					sel[f] = x
				}
			}
			page[i] = sel
		}
	}
	writeJSON(w, http.StatusOK, view{collection: page, collection + "_links": links})
	return nil
}

func pageURL(r *http.Request, marker string, reverse bool) string {
	q := r.URL.Query()
	q.Set("marker", marker)
	if reverse {
		q.Set("page_reverse", "True")
	} else {
		q.Del("page_reverse")
	}
	return baseURL(r) + r.URL.Path + "?" + q.Encode()
}

func fieldList(q url.Values) []string {
	var fs []string
	for _, f := range q["fields"] {
		for x := range strings.SplitSeq(f, ",") {
			if x = strings.TrimSpace(x); x != "" {
				fs = append(fs, x)
			}
		}
	}
	return fs
}

func sortKeys(q url.Values, items []view) ([]sortKey, *apiError) {
	var keys []sortKey
	add := func(k, dir string) *apiError {
		switch strings.ToLower(dir) {
		case "", "asc":
			keys = append(keys, sortKey{key: k})
		case "desc":
			keys = append(keys, sortKey{key: k, desc: true})
		default:
			return errorf(http.StatusBadRequest, "Supplied sort direction '%s' is not valid.", dir)
		}
		return nil
	}
	for _, s := range q["sort"] {
		for part := range strings.SplitSeq(s, ",") {
			k, dir, _ := strings.Cut(strings.TrimSpace(part), ":")
			if e := add(k, dir); e != nil {
				return nil, e
			}
		}
	}
	var sk, sd []string
	for _, s := range q["sort_key"] {
		sk = append(sk, strings.Split(s, ",")...)
	}
	for _, s := range q["sort_dir"] {
		sd = append(sd, strings.Split(s, ",")...)
	}
	for _, d := range sd {
		if d := strings.ToLower(strings.TrimSpace(d)); d != "asc" && d != "desc" {
			return nil, errorf(http.StatusBadRequest, "Supplied sort direction '%s' is not valid.", d)
		}
	}
	for i, k := range sk {
		dir := ""
		if i < len(sd) {
			dir = sd[i]
		} else if len(sd) > 0 {
			dir = sd[len(sd)-1]
		}
		if e := add(strings.TrimSpace(k), dir); e != nil {
			return nil, e
		}
	}
	sortable := sortableKeys(items)
	for _, k := range keys {
		if !sortable[k.key] {
			return nil, errorf(http.StatusBadRequest, "Supplied sort key '%s' is not valid.", k.key)
		}
	}
	if len(keys) == 0 {
		keys = append(keys, sortKey{key: "created_at"})
	}
	return append(keys, sortKey{key: "id"}), nil
}

// sortableKeys are the scalar attributes of the resource.
func sortableKeys(items []view) map[string]bool {
	ok := map[string]bool{"id": true, "name": true, "created_at": true, "updated_at": true,
		"provisioning_status": true, "operating_status": true, "project_id": true}
	for _, v := range items {
		for k, x := range v {
			switch x.(type) {
			case string, int, bool, stamp, nil:
				ok[k] = true
			}
		}
	}
	return ok
}

func compareValues(a, b any) int {
	switch x := a.(type) {
	case string:
		y, _ := b.(string)
		return cmp.Compare(x, y)
	case int:
		y, _ := b.(int)
		return cmp.Compare(x, y)
	case bool:
		y, _ := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case stamp:
		y, _ := b.(stamp)
		return time.Time(x).Compare(time.Time(y))
	case nil:
		if b == nil {
			return 0
		}
		return -1
	}
	if b == nil {
		return 1
	}
	return cmp.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

// match says whether v passes the filters of q: each attribute named is
// one of the values given; tags as Octavia's tag filters.
func match(v view, q url.Values) bool {
	for k, want := range q {
		if listParams[k] {
			continue
		}
		var x any
		switch k {
		case "loadbalancer_id", "pool_id", "listener_id":
			lists := map[string]string{"loadbalancer_id": "loadbalancers", "pool_id": "pools", "listener_id": "listeners"}
			refs, ok := v[lists[k]].([]view)
			if !ok {
				continue
			}
			found := false
			for _, ref := range refs {
				if slices.Contains(want, ref["id"].(string)) {
					found = true
				}
			}
			if !found {
				return false
			}
			continue
		default:
			var ok bool
			if x, ok = v[k]; !ok {
				continue // not an attribute: ignored
			}
		}
		if !slices.ContainsFunc(want, func(w string) bool { return equalValue(x, w) }) {
			return false
		}
	}
	tags := tagsOf(nil)
	if t, ok := v["tags"].([]string); ok {
		tags = t
	}
	has := func(t string) bool { return slices.Contains(tags, t) }
	split := func(name string) []string {
		var out []string
		for _, s := range q[name] {
			for t := range strings.SplitSeq(s, ",") {
				if t != "" {
					out = append(out, t)
				}
			}
		}
		return out
	}
	if t := split("tags"); len(t) > 0 && !all(t, has) {
		return false
	}
	if t := split("tags-any"); len(t) > 0 && !slices.ContainsFunc(t, has) {
		return false
	}
	if t := split("not-tags"); len(t) > 0 && all(t, has) {
		return false
	}
	if t := split("not-tags-any"); len(t) > 0 && slices.ContainsFunc(t, has) {
		return false
	}
	return true
}

func all(ts []string, f func(string) bool) bool {
	for _, t := range ts {
		if !f(t) {
			return false
		}
	}
	return true
}

func equalValue(x any, w string) bool {
	switch x := x.(type) {
	case string:
		return x == w
	case int:
		n, err := strconv.Atoi(w)
		return err == nil && n == x
	case bool:
		b, err := strconv.ParseBool(strings.ToLower(w))
		return err == nil && b == x
	case stamp:
		return x.String() == w
	case nil:
		return w == "" || w == "None" || w == "null"
	}
	return fmt.Sprint(x) == w
}
