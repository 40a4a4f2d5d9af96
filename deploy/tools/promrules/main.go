// promrules: the two rule commands of Prometheus's promtool that `make check` runs, built from
// the same module version, without the rest of promtool (service discovery for every cloud, TSDB
// tools, the HTTP API client), whose modules made a cold build take ~36 minutes on 2 cores.
//
//	promrules check rules FILE...   as `promtool check rules` (duplicate-rules lint, not fatal)
//	promrules test rules FILE...    as `promtool test rules` (unittest.go is promtool's own code)
//
// The check is promtool's: rulefmt.ParseFile (YAML, every expression parsed, templates checked),
// then the duplicate-rule lint. Exit codes as promtool's: 0 success, 1 failure, 3 lint (fatal).
package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
)

const (
	successExitCode = 0
	failureExitCode = 1
)

var errLint = errors.New("lint error")

func main() {
	args := os.Args[1:]
	p := parser.NewParser(parser.Options{})
	switch {
	case len(args) >= 3 && args[0] == "check" && args[1] == "rules":
		os.Exit(checkRules(p, args[2:]))
	case len(args) >= 3 && args[0] == "test" && args[1] == "rules":
		opts := promqltest.LazyLoaderOpts{EnableAtModifier: true, EnableNegativeOffset: true}
		os.Exit(RulesUnitTestResult(io.Discard, opts, p, nil, false, false, false, args[2:]...))
	default:
		fmt.Fprintln(os.Stderr, "usage: promrules check rules FILE... | promrules test rules FILE...")
		os.Exit(2)
	}
}

// checkRules is promtool's checkRules with its default flags (--lint=duplicate-rules, not fatal).
func checkRules(p parser.Parser, files []string) int {
	logger := promslog.New(&promslog.Config{})
	failed := false
	for _, f := range files {
		fmt.Println("Checking", f)
		rgs, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, p, logger)
		if errs != nil {
			fmt.Fprintln(os.Stderr, "  FAILED:")
			hasErrors := false
			for _, e := range errs {
				fmt.Fprintln(os.Stderr, e.Error())
				hasErrors = hasErrors || !errors.Is(e, errLint)
			}
			failed = failed || hasErrors
			if hasErrors {
				continue
			}
		}
		n := 0
		for _, rg := range rgs.Groups {
			n += len(rg.Rules)
		}
		if dups := checkDuplicates(rgs.Groups); len(dups) != 0 {
			// A lint, as in promtool: reported, not fatal.
			fmt.Fprintf(os.Stderr, "  FAILED:\n%d duplicate rule(s) found.\n", len(dups))
			for _, d := range dups {
				fmt.Fprintf(os.Stderr, "Metric: %s\nLabel(s):\n", d.metric)
				d.label.Range(func(l labels.Label) { fmt.Fprintf(os.Stderr, "\t%s: %s\n", l.Name, l.Value) })
			}
		} else {
			fmt.Printf("  SUCCESS: %d rules found\n", n)
		}
		fmt.Println()
	}
	if failed {
		return failureExitCode
	}
	return successExitCode
}

type compareRuleType struct {
	metric string
	label  labels.Labels
}

func compare(a, b compareRuleType) int {
	if res := strings.Compare(a.metric, b.metric); res != 0 {
		return res
	}
	return labels.Compare(a.label, b.label)
}

func checkDuplicates(groups []rulefmt.RuleGroup) []compareRuleType {
	var duplicates, all []compareRuleType
	for _, group := range groups {
		for _, rule := range group.Rules {
			metric := rule.Record
			if rule.Alert != "" {
				metric = rule.Alert
			}
			all = append(all, compareRuleType{metric: metric, label: rules.FromMaps(group.Labels, rule.Labels)})
		}
	}
	sort.Slice(all, func(i, j int) bool { return compare(all[i], all[j]) < 0 })
	for i := 1; i < len(all); i++ {
		if compare(all[i-1], all[i]) == 0 &&
			(len(duplicates) == 0 || compare(all[i], duplicates[len(duplicates)-1]) != 0) {
			duplicates = append(duplicates, all[i])
		}
	}
	return duplicates
}

// parseTime is promtool's (cmd/promtool/query.go), which unittest.go uses for start_timestamp.
func parseTime(s string) (time.Time, error) {
	if t, err := strconv.ParseFloat(s, 64); err == nil {
		s, ns := math.Modf(t)
		return time.Unix(int64(s), int64(ns*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}
