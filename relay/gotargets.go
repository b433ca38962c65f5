package relay

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/rules"
)

// AddTarget adds a target configured in Go with its adapter's typed
// Config (&webhook.Config{…}, &redis.Config{…}, …), as the "notify"
// section would: it is validated the same way, and an error names the
// field as the file's would (notify.webhook.1.endpoint). The Config's
// Enable field says whether the target is started. AddTarget returns the
// target's ARN, for bucket rules. A Config decoded from JSON by the same
// type behaves identically.
func (c *Config) AddTarget(id string, params kit.Config) (arn string, err error) {
	if params == nil || reflect.ValueOf(params).Kind() != reflect.Pointer || reflect.ValueOf(params).IsNil() {
		return "", fmt.Errorf("relay: AddTarget takes a pointer to an adapter's Config (such as &webhook.Config{…}), got %T", params)
	}
	var k *kit.Kind
	for _, kk := range kinds {
		if reflect.TypeOf(kk.NewConfig()) == reflect.TypeOf(params) {
			k = kk
			break
		}
	}
	if k == nil {
		return "", fmt.Errorf("relay: %T is not the Config of a target kind (want one of %s)", params, strings.Join(kindNames(), ", "))
	}
	path := "notify." + k.Name + "." + id
	if id == "" || strings.ContainsAny(id, ": \t") {
		return "", &ConfigError{Path: path, Msg: "target id must be non-empty without ':' or spaces"}
	}
	arn = rules.ARN{Region: c.Relay.Region, ID: id, Kind: k.Name}.String()
	if c.target(arn) != nil {
		return "", &ConfigError{Path: path, Msg: "a target with this kind and id exists already"}
	}
	if err := params.Validate(); err != nil {
		return "", fieldError(nil, path, err)
	}
	enabled := true
	if f := reflect.ValueOf(params).Elem().FieldByName("Enable"); f.IsValid() && f.Kind() == reflect.Bool {
		enabled = f.Bool()
	}
	c.Targets = append(c.Targets, TargetConfig{Kind: k.Name, ID: id, Enabled: enabled, ARN: arn,
		Params: params, Namespace: k.IsNamespace(params), WhenFull: WhenFullBlock})
	return arn, nil
}
