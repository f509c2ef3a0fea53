package dynamo_test

import (
	"os"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"gopkg.in/yaml.v3"

	"github.com/dynamerge/dynamerge/store/dynamo"
)

// keyElem is a KeySchema element of the template.
type keyElem struct {
	AttributeName string `yaml:"AttributeName"`
	KeyType       string `yaml:"KeyType"`
}

// TestCloudFormationMatchesLayout checks that schema/cloudformation.yaml
// declares the table that TableDefinition (and so --create-table) creates:
// same keys, feed index and projection, stream of new images, on-demand
// billing, and point-in-time recovery on.
func TestCloudFormationMatchesLayout(t *testing.T) {
	b, err := os.ReadFile("../../schema/cloudformation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Resources struct {
			Table struct {
				Type           string `yaml:"Type"`
				DeletionPolicy string `yaml:"DeletionPolicy"`
				Properties     struct {
					BillingMode          string `yaml:"BillingMode"`
					AttributeDefinitions []struct {
						AttributeName string `yaml:"AttributeName"`
						AttributeType string `yaml:"AttributeType"`
					} `yaml:"AttributeDefinitions"`
					KeySchema              []keyElem `yaml:"KeySchema"`
					GlobalSecondaryIndexes []struct {
						IndexName  string    `yaml:"IndexName"`
						KeySchema  []keyElem `yaml:"KeySchema"`
						Projection struct {
							ProjectionType   string   `yaml:"ProjectionType"`
							NonKeyAttributes []string `yaml:"NonKeyAttributes"`
						} `yaml:"Projection"`
					} `yaml:"GlobalSecondaryIndexes"`
					StreamSpecification struct {
						StreamViewType string `yaml:"StreamViewType"`
					} `yaml:"StreamSpecification"`
					PointInTimeRecoverySpecification struct {
						PointInTimeRecoveryEnabled bool `yaml:"PointInTimeRecoveryEnabled"`
					} `yaml:"PointInTimeRecoverySpecification"`
				} `yaml:"Properties"`
			} `yaml:"Table"`
		} `yaml:"Resources"`
	}
	// CloudFormation's short forms (!Ref, !GetAtt) are custom tags, which
	// yaml.v3 decodes into strings as they are.
	if err := yaml.Unmarshal(b, &tmpl); err != nil {
		t.Fatalf("cloudformation.yaml: %v", err)
	}
	table := tmpl.Resources.Table
	p := table.Properties
	want := dynamo.TableDefinition("x")
	if table.Type != "AWS::DynamoDB::Table" || table.DeletionPolicy != "Retain" {
		t.Fatalf("resource Table: type %q, deletion policy %q", table.Type, table.DeletionPolicy)
	}
	if got := p.BillingMode; got != string(want.BillingMode) {
		t.Errorf("BillingMode %q, want %q", got, want.BillingMode)
	}
	var attrs, wantAttrs []string
	for _, a := range p.AttributeDefinitions {
		attrs = append(attrs, a.AttributeName+":"+a.AttributeType)
	}
	for _, a := range want.AttributeDefinitions {
		wantAttrs = append(wantAttrs, aws.ToString(a.AttributeName)+":"+string(a.AttributeType))
	}
	if !slices.Equal(attrs, wantAttrs) {
		t.Errorf("AttributeDefinitions %v, want %v", attrs, wantAttrs)
	}
	keys := func(ks []keyElem) []string {
		var s []string
		for _, k := range ks {
			s = append(s, k.AttributeName+":"+k.KeyType)
		}
		return s
	}
	var wantKeys []string
	for _, k := range want.KeySchema {
		wantKeys = append(wantKeys, aws.ToString(k.AttributeName)+":"+string(k.KeyType))
	}
	if got := keys(p.KeySchema); !slices.Equal(got, wantKeys) {
		t.Errorf("KeySchema %v, want %v", got, wantKeys)
	}
	if len(p.GlobalSecondaryIndexes) != len(want.GlobalSecondaryIndexes) {
		t.Fatalf("%d global secondary indexes, want %d", len(p.GlobalSecondaryIndexes), len(want.GlobalSecondaryIndexes))
	}
	for i, w := range want.GlobalSecondaryIndexes {
		var wantIndexKeys []string
		for _, k := range w.KeySchema {
			wantIndexKeys = append(wantIndexKeys, aws.ToString(k.AttributeName)+":"+string(k.KeyType))
		}
		g := p.GlobalSecondaryIndexes[i]
		if g.IndexName != aws.ToString(w.IndexName) || !slices.Equal(keys(g.KeySchema), wantIndexKeys) {
			t.Errorf("index %s %v, want %s %v", g.IndexName, keys(g.KeySchema), aws.ToString(w.IndexName), wantIndexKeys)
		}
		if g.Projection.ProjectionType != "INCLUDE" || !slices.Equal(g.Projection.NonKeyAttributes, w.Projection.NonKeyAttributes) {
			t.Errorf("index %s projection %s %v, want INCLUDE %v", g.IndexName, g.Projection.ProjectionType, g.Projection.NonKeyAttributes, w.Projection.NonKeyAttributes)
		}
	}
	if got := p.StreamSpecification.StreamViewType; got != string(want.StreamSpecification.StreamViewType) {
		t.Errorf("StreamViewType %q, want %q", got, want.StreamSpecification.StreamViewType)
	}
	if !p.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled {
		t.Error("point-in-time recovery is off")
	}
}
