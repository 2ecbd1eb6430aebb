#pragma once
// Creates the eight workbench views by their stable names (the names of `kvwb-gui --view`).
#include <QString>
#include <QStringList>
#include <QWidget>

#include "views/view.h"

namespace kvwb::app {

/// The view names in menu order: layer-map, spectrum, sigma-q, distribution, layer-error,
/// pareto, config.
QStringList view_names();

/// A new view named `name` (one of view_names()), owned by `parent`; nullptr for an unknown name.
views::View* make_view(const QString& name, QWidget* parent);

}  // namespace kvwb::app
