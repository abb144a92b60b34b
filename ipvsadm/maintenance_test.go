package ipvsadm

import "testing"

func TestParseMaintenance(t *testing.T) {
	for _, c := range []struct {
		args  []string
		on    bool
		drain uint32
	}{
		{[]string{"--maintenance", "on"}, true, 0},
		{[]string{"--maintenance", "on", "--drain", "30"}, true, 30},
		{[]string{"--maintenance", "off"}, false, 0},
	} {
		cmd, err := Parse(c.args)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if cmd.Kind != KindMaintenance || cmd.Maintenance != c.on || cmd.Drain != c.drain {
			t.Errorf("%v: %+v", c.args, cmd)
		}
	}
	for args, want := range map[string][]string{
		"illegal maintenance parameter specified (on or off)":             {"--maintenance", "maybe"},
		"illegal drain time specified (0 to 86400 seconds)":               {"--maintenance", "on", "--drain", "x"},
		"Illegal 'weight' option with the 'maintenance' command":          {"--maintenance", "on", "-w", "1"},
		"Illegal 'drain' option with the 'list' command":                  {"-L", "--drain", "3"},
		"Illegal 'service-address' option with the 'maintenance' command": {"--maintenance", "off", "-t", "198.18.0.1:80"},
	} {
		if _, err := Parse(want); err == nil || err.Error() != args {
			t.Errorf("%v: %v, want %q", want, err, args)
		}
	}
}
