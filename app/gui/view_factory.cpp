// The eight views by name: the charts, the Pareto view and the configuration editor live in
// kvwb::views, the ImGui layer map in kvwb::views_canvas.
#include "app/gui/view_factory.h"

#include "views/compare_view.h"
#include "views/config_view.h"
#include "views/distribution_view.h"
#include "views/layer_error_view.h"
#include "views/layer_map_view.h"
#include "views/pareto_view.h"
#include "views/sigma_q_view.h"
#include "views/spectrum_view.h"

namespace kvwb::app {

QStringList view_names() {
  return {"layer-map",   "spectrum", "sigma-q", "distribution",
          "layer-error", "pareto",   "config",  "compare"};
}

views::View* make_view(const QString& name, QWidget* parent) {
  if (name == "layer-map") return new views::LayerMapView(parent);
  if (name == "spectrum") return new views::SpectrumView(parent);
  if (name == "sigma-q") return new views::SigmaQView(parent);
  if (name == "distribution") return new views::DistributionView(parent);
  if (name == "layer-error") return new views::LayerErrorView(parent);
  if (name == "pareto") return new views::ParetoView(parent);
  if (name == "config") return new views::ConfigView(parent);
  if (name == "compare") return new views::CompareView(parent);
  return nullptr;
}

}  // namespace kvwb::app
