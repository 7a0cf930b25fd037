package prometheusreceiver

import (
	"strconv"

	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/relabel"
)

// shardLabel is a temporary label (dropped by Prometheus before the scrape,
// as every __tmp label is) that holds a target's shard.
const shardLabel = "__tmp_sluice_shard"

// applyShard makes each scrape config keep only the targets of this shard:
// the hashmod of the target's address after the user's own relabeling, the
// same way Prometheus users shard by hand.
func applyShard(scfgs []*promconfig.ScrapeConfig, shard ShardConfig) {
	if shard.Count <= 1 {
		return
	}
	for _, sc := range scfgs {
		sc.RelabelConfigs = append(sc.RelabelConfigs,
			&relabel.Config{
				SourceLabels:         model.LabelNames{model.AddressLabel},
				Modulus:              uint64(shard.Count),
				TargetLabel:          shardLabel,
				Action:               relabel.HashMod,
				Separator:            relabel.DefaultRelabelConfig.Separator,
				Regex:                relabel.DefaultRelabelConfig.Regex,
				Replacement:          relabel.DefaultRelabelConfig.Replacement,
				NameValidationScheme: model.UTF8Validation,
			},
			&relabel.Config{
				SourceLabels:         model.LabelNames{shardLabel},
				Regex:                relabel.MustNewRegexp(strconv.Itoa(shard.Index)),
				Action:               relabel.Keep,
				Separator:            relabel.DefaultRelabelConfig.Separator,
				Replacement:          relabel.DefaultRelabelConfig.Replacement,
				NameValidationScheme: model.UTF8Validation,
			},
		)
	}
}
