#include "app/gui/sweep_dialog.h"

#include <QCheckBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFontDatabase>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QTreeWidget>
#include <QVBoxLayout>
#include <memory>

#include "app/gui/dialog_util.h"
#include "app/gui/slurm_dialog.h"
#include "app/gui/workbench.h"
#include "base/errors.h"
#include "sessions/explore/result_store.h"
#include "sessions/explore/sweep.h"
#include "views/view.h"

namespace kvwb::app {

using nlohmann::json;

namespace {

enum ItemKind { kFamilyItem = 0, kCrossItem = 1, kParamItem = 2, kValueItem = 3 };
constexpr int kKindRole = Qt::UserRole;
constexpr int kFamilyRole = Qt::UserRole + 1;
constexpr int kParamRole = Qt::UserRole + 2;
constexpr int kValueRole = Qt::UserRole + 3;

QString fmt_num(const json& v, const char* f) {
  if (!v.is_number()) return QStringLiteral("n/a");
  return QString::asprintf(f, v.get<double>());
}

// The options of a results-table row as "key=value key=value".
QString options_text(const json& opts) {
  QStringList parts;
  for (auto it = opts.begin(); it != opts.end(); ++it) {
    QString v;
    if (it->is_string()) {
      v = QString::fromStdString(it->get<std::string>());
    } else if (it->is_array()) {
      QStringList xs;
      for (const auto& x : *it)
        xs << QString::fromStdString(x.is_string() ? x.get<std::string>() : x.dump());
      v = xs.join(',');
    } else {
      v = QString::fromStdString(it->dump());
    }
    parts << QString::fromStdString(it.key()) + "=" + v;
  }
  return parts.join(' ');
}

}  // namespace

SweepDialog::SweepDialog(Workbench& workbench, QWidget* parent) : QDialog(parent), wb_(workbench) {
  setWindowTitle(tr("Sweep"));
  setObjectName(QStringLiteral("sweep_dialog"));
  model_ = make_grid_builder(wb_.current_config());
  build_ui();
  populate_tree();
  set_grid(default_sweep_grid(), tr("default grid"));
  set_sweep_name(QStringLiteral("sweep-%1").arg(wb_.document().sweeps.size() + 1));
  connect(&wb_, &Workbench::jobs_changed, this, &SweepDialog::on_jobs_changed);
  connect(&wb_, &Workbench::document_changed, this, &SweepDialog::refresh_fixed);
  dlg::watch_job(
      wb_, this, job_id_, job_name_, [this](const QString& e) { failure_ = e; },
      [this] { cancelled_ = true; });
  update_buttons();
}

SweepDialog::~SweepDialog() = default;

void SweepDialog::build_ui() {
  resize(1180, 820);
  auto* root = new QVBoxLayout(this);

  // ---- left: builder ----
  auto* builder_box = new QGroupBox(tr("Grid builder"));
  auto* bl = new QVBoxLayout(builder_box);
  auto* hint = dlg::wrapped_label(
      tr("Check codec families and the parameter values to try. Both streams (K, V) "
         "use the family's codec; without K \u00d7 V they take the same values."));
  bl->addWidget(hint);
  tree_ = new QTreeWidget;
  tree_->setObjectName(QStringLiteral("grid_tree"));
  tree_->setColumnCount(2);
  tree_->setHeaderLabels({tr("Family / parameter / value"), tr("Cells / values")});
  tree_->header()->setSectionResizeMode(0, QHeaderView::Stretch);
  tree_->header()->setSectionResizeMode(1, QHeaderView::ResizeToContents);
  tree_->header()->setStretchLastSection(false);
  tree_->setUniformRowHeights(true);
  bl->addWidget(tree_, 3);
  auto* fixed_label =
      dlg::wrapped_label(tr("Fixed run settings from the current configuration — the "
                            "ticked ones apply to every cell (they are written into the "
                            "grid's \"fixed\" object on the right):"));
  bl->addWidget(fixed_label);
  fixed_list_ = new QListWidget;
  fixed_list_->setObjectName(QStringLiteral("fixed_list"));
  fixed_list_->setMaximumHeight(72);
  bl->addWidget(fixed_list_, 1);
  connect(tree_, &QTreeWidget::itemChanged, this, &SweepDialog::on_item_changed);
  connect(fixed_list_, &QListWidget::itemChanged, this, [this](QListWidgetItem* it) {
    if (updating_) return;
    const std::string key = it->data(Qt::UserRole).toString().toStdString();
    for (auto& o : model_.fixed)
      if (o.key == key) o.enabled = it->checkState() == Qt::Checked;
    if (grid_source_ == tr("grid builder"))
      rebuild_from_builder();
    else
      show_grid();
  });

  // ---- right: grid ----
  auto* grid_box = new QGroupBox(tr("Grid (docs/sweeps.md)"));
  auto* gl = new QVBoxLayout(grid_box);
  source_label_ = new QLabel;
  gl->addWidget(source_label_);
  grid_text_ = new QPlainTextEdit;
  grid_text_->setObjectName(QStringLiteral("grid_text"));
  grid_text_->setReadOnly(true);
  grid_text_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  grid_text_->setLineWrapMode(QPlainTextEdit::NoWrap);
  gl->addWidget(grid_text_, 1);
  cells_label_ = new QLabel;
  cells_label_->setObjectName(QStringLiteral("cells_label"));
  cells_label_->setWordWrap(true);
  gl->addWidget(cells_label_);
  auto* file_row = new QHBoxLayout;
  auto* load = new QPushButton(tr("Load grid file\u2026"));
  auto* save = new QPushButton(tr("Save grid\u2026"));
  auto* def = new QPushButton(tr("Default grid"));
  file_row->addWidget(load);
  file_row->addWidget(save);
  file_row->addWidget(def);
  file_row->addStretch(1);
  gl->addLayout(file_row);
  connect(load, &QPushButton::clicked, this, [this] {
    const QString p =
        QFileDialog::getOpenFileName(this, tr("Load sweep grid"), QString(), tr("Grid (*.json)"));
    if (!p.isEmpty()) load_grid_file(p);
  });
  connect(save, &QPushButton::clicked, this, [this] {
    QString p = QFileDialog::getSaveFileName(this, tr("Save sweep grid"),
                                             QStringLiteral("grid.json"), tr("Grid (*.json)"));
    if (p.isEmpty()) return;
    if (!p.endsWith(QStringLiteral(".json"))) p += QStringLiteral(".json");
    save_grid_file(p);
  });
  connect(def, &QPushButton::clicked, this,
          [this] { set_grid(default_sweep_grid(), tr("default grid")); });

  auto* split = new QSplitter(Qt::Horizontal);
  split->addWidget(builder_box);
  split->addWidget(grid_box);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 1);
  root->addWidget(split, 5);

  // ---- run ----
  auto* run_box = new QGroupBox(tr("Run"));
  auto* rl = new QVBoxLayout(run_box);
  auto* form = new QFormLayout;
  name_edit_ = new QLineEdit;
  name_edit_->setObjectName(QStringLiteral("sweep_name"));
  form->addRow(tr("Name:"), name_edit_);
  auto* store_row = new QHBoxLayout;
  store_edit_ = new QLineEdit;
  store_edit_->setObjectName(QStringLiteral("store_dir"));
  auto* browse = new QPushButton(tr("Browse\u2026"));
  store_row->addWidget(store_edit_, 1);
  store_row->addWidget(browse);
  form->addRow(tr("Store folder:"), store_row);
  resume_box_ = new QCheckBox(tr("Resume (continue this store: skip the cells it already holds)"));
  resume_box_->setObjectName(QStringLiteral("resume"));
  form->addRow(QString(), resume_box_);
  // End-to-end axes (docs/model-in-the-loop.md): the same as `kvwb sweep --model --text`.
  e2e_box_ = new QCheckBox(tr("End-to-end axes: also evaluate every cell with a model "
                              "(Δppl, top-1, KL; kvwb sweep --model)"));
  e2e_box_->setObjectName(QStringLiteral("e2e"));
  form->addRow(QString(), e2e_box_);
  auto* e2e_row = new QHBoxLayout;
  e2e_model_ = new QLineEdit;
  e2e_model_->setObjectName(QStringLiteral("e2e_model"));
  e2e_model_->setPlaceholderText(tr("model folder (config.json + weights + tokenizer) or llama2.c .bin"));
  auto* model_browse = new QPushButton(tr("Model…"));
  e2e_text_ = new QLineEdit;
  e2e_text_->setObjectName(QStringLiteral("e2e_text"));
  e2e_text_->setPlaceholderText(tr("UTF-8 text file"));
  auto* text_browse = new QPushButton(tr("Text…"));
  e2e_row->addWidget(e2e_model_, 1);
  e2e_row->addWidget(model_browse);
  e2e_row->addWidget(e2e_text_, 1);
  e2e_row->addWidget(text_browse);
  form->addRow(tr("Model / text:"), e2e_row);
  auto* e2e_proto = new QHBoxLayout;
  e2e_context_ = new QSpinBox;
  e2e_context_->setRange(0, 1 << 20);
  e2e_context_->setSpecialValueText(tr("default"));
  e2e_context_->setToolTip(tr("Prefill tokens C incl. BOS (default: min(2048, max_position − N))"));
  e2e_continuation_ = new QSpinBox;
  e2e_continuation_->setRange(2, 1 << 20);
  e2e_continuation_->setValue(64);
  e2e_continuation_->setToolTip(tr("Teacher-forced tokens N (N−1 scored)"));
  e2e_passages_ = new QSpinBox;
  e2e_passages_->setRange(0, 1 << 16);
  e2e_passages_->setSpecialValueText(tr("all (≤ %1)").arg(sessions::kDefaultMaxPassages));
  e2e_passages_->setValue(0);
  e2e_passages_->setToolTip(tr("Passages P: every passage the text holds (up to %1) by default; the 95 % intervals "
                               "and the verdict need many (docs/model-in-the-loop.md)")
                                .arg(sessions::kDefaultMaxPassages));
  for (auto [label, box] : {std::pair{tr("context"), e2e_context_},
                            std::pair{tr("continuation"), e2e_continuation_},
                            std::pair{tr("passages"), e2e_passages_}}) {
    e2e_proto->addWidget(new QLabel(label));
    e2e_proto->addWidget(box);
  }
  e2e_proto->addStretch(1);
  form->addRow(tr("Protocol:"), e2e_proto);
  auto sync_e2e = [this] {
    const bool on = e2e_box_->isChecked() && e2e_box_->isEnabled();
    for (QWidget* w : std::initializer_list<QWidget*>{e2e_model_, e2e_text_, e2e_context_,
                                                      e2e_continuation_, e2e_passages_})
      w->setEnabled(on);
  };
  connect(e2e_box_, &QCheckBox::toggled, this, sync_e2e);
  sync_e2e();
  connect(model_browse, &QPushButton::clicked, this, [this] {
    const QString d = QFileDialog::getExistingDirectory(this, tr("Model folder"), e2e_model_->text());
    if (!d.isEmpty()) {
      e2e_model_->setText(d);
      e2e_box_->setChecked(true);
    }
  });
  connect(text_browse, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, tr("Text file"), e2e_text_->text(),
                                                   tr("Text (*.txt);;All files (*)"));
    if (!f.isEmpty()) e2e_text_->setText(f);
  });
  rl->addLayout(form);
  connect(name_edit_, &QLineEdit::textEdited, this, [this](const QString& n) {
    if (!store_edited_) store_edit_->setText(wb_.default_store_dir(n));
  });
  connect(store_edit_, &QLineEdit::textEdited, this, [this] { store_edited_ = true; });
  auto* fresh = dlg::button(tr("New folder"), QStringLiteral("new_store"), this, [this] {
    store_edited_ = false;
    set_sweep_name(name_edit_->text().trimmed().isEmpty() ? QStringLiteral("sweep")
                                                          : name_edit_->text().trimmed());
  });
  fresh->setToolTip(tr("A new, empty store folder beside the session (named after the sweep)"));
  store_row->addWidget(fresh);
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString d =
        QFileDialog::getExistingDirectory(this, tr("Result store folder"), store_edit_->text());
    if (!d.isEmpty()) set_store_dir(d);
  });

  auto* prog_row = new QHBoxLayout;
  progress_ = new QProgressBar;
  progress_->setObjectName(QStringLiteral("progress"));
  progress_->setRange(0, 1);
  progress_->setValue(0);
  progress_->setFormat(tr("idle"));
  progress_->setTextVisible(true);
  start_button_ = dlg::button(tr("Start"), QStringLiteral("start"), this, [this] { start(); });
  start_button_->setDefault(true);
  cancel_button_ =
      dlg::button(tr("Cancel sweep"), QStringLiteral("cancel"), this, [this] { cancel(); });
  slurm_button_ = dlg::button(tr("Slurm scripts\u2026"), QStringLiteral("slurm"), this,
                              [this] { open_slurm_dialog(); });
  slurm_button_->setToolTip(tr("Write this grid as a Slurm job array of shards plus a merge job instead of "
                               "running it here (docs/cluster.md)"));
  prog_row->addWidget(progress_, 1);
  prog_row->addWidget(start_button_);
  prog_row->addWidget(cancel_button_);
  prog_row->addWidget(slurm_button_);
  rl->addLayout(prog_row);

  status_label_ = dlg::selectable_label(QStringLiteral("status"));
  rl->addWidget(status_label_);
  summary_label_ = dlg::selectable_label(QStringLiteral("summary"));
  rl->addWidget(summary_label_);
  results_ = new QTableWidget(0, 5);
  results_->setObjectName(QStringLiteral("results"));
  results_->setHorizontalHeaderLabels(
      {tr("Cell"), tr("Options"), tr("Ratio vs bf16"), tr("Attn out rel. err"), tr("Status")});
  results_->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);
  results_->verticalHeader()->setVisible(false);
  results_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  results_->setSelectionBehavior(QAbstractItemView::SelectRows);
  results_->setMinimumHeight(100);
  rl->addWidget(results_, 1);
  root->addWidget(run_box, 3);

  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  root->addWidget(buttons);
}

void SweepDialog::populate_tree() {
  updating_ = true;
  tree_->clear();
  for (size_t fi = 0; fi < model_.families.size(); ++fi) {
    const GridFamily& f = model_.families[fi];
    auto* fam = new QTreeWidgetItem(tree_, {QString::fromStdString(f.codec), QString()});
    fam->setFlags(fam->flags() | Qt::ItemIsUserCheckable);
    fam->setCheckState(0, f.enabled ? Qt::Checked : Qt::Unchecked);
    fam->setData(0, kKindRole, kFamilyItem);
    fam->setData(0, kFamilyRole, static_cast<int>(fi));
    if (f.params.empty()) continue;
    auto* cross =
        new QTreeWidgetItem(fam, {tr("K \u00d7 V: vary K and V values independently"), QString()});
    cross->setFlags(cross->flags() | Qt::ItemIsUserCheckable);
    cross->setCheckState(0, f.cross_kv ? Qt::Checked : Qt::Unchecked);
    cross->setData(0, kKindRole, kCrossItem);
    cross->setData(0, kFamilyRole, static_cast<int>(fi));
    for (size_t pi = 0; pi < f.params.size(); ++pi) {
      const GridParam& p = f.params[pi];
      auto* par = new QTreeWidgetItem(fam, {QString::fromStdString(p.name), QString()});
      par->setToolTip(0, QString::fromStdString(p.help));
      par->setData(0, kKindRole, kParamItem);
      par->setData(0, kFamilyRole, static_cast<int>(fi));
      par->setData(0, kParamRole, static_cast<int>(pi));
      for (size_t vi = 0; vi < p.values.size(); ++vi) {
        auto* val = new QTreeWidgetItem(par, {QString::fromStdString(p.values[vi].label)});
        val->setFlags(val->flags() | Qt::ItemIsUserCheckable);
        val->setCheckState(0, p.values[vi].checked ? Qt::Checked : Qt::Unchecked);
        val->setData(0, kKindRole, kValueItem);
        val->setData(0, kFamilyRole, static_cast<int>(fi));
        val->setData(0, kParamRole, static_cast<int>(pi));
        val->setData(0, kValueRole, static_cast<int>(vi));
      }
    }
    refresh_family_item(static_cast<int>(fi));
  }
  fill_fixed_list();
  updating_ = false;
}

void SweepDialog::fill_fixed_list() {
  fixed_list_->clear();
  for (const auto& o : model_.fixed) {
    auto* it = new QListWidgetItem(QString::fromStdString(o.label()), fixed_list_);
    it->setFlags(it->flags() | Qt::ItemIsUserCheckable);
    it->setCheckState(o.enabled ? Qt::Checked : Qt::Unchecked);
    it->setData(Qt::UserRole, QString::fromStdString(o.key));
  }
}

void SweepDialog::refresh_fixed() {
  if (running()) return;
  // The run-level settings follow the current configuration; the user's choices of which to keep
  // stay (options new to the list start enabled).
  std::vector<GridFixedOption> next = make_grid_builder(wb_.current_config()).fixed;
  for (auto& o : next)
    for (const auto& old : model_.fixed)
      if (old.key == o.key) o.enabled = old.enabled;
  bool same = next.size() == model_.fixed.size();
  for (size_t i = 0; same && i < next.size(); ++i)
    same = next[i].key == model_.fixed[i].key && next[i].value == model_.fixed[i].value;
  if (same) return;
  model_.fixed = std::move(next);
  updating_ = true;
  fill_fixed_list();
  updating_ = false;
  if (grid_source_ == tr("grid builder"))
    rebuild_from_builder();
  else
    show_grid();
}

void SweepDialog::refresh_family_item(int fi) {
  QTreeWidgetItem* fam = tree_->topLevelItem(fi);
  if (!fam) return;
  const GridFamily& f = model_.families[static_cast<size_t>(fi)];
  const size_t combos = param_combos(f).size();
  const size_t cells = f.cross_kv ? combos * combos : combos;
  const bool was = updating_;
  updating_ = true;
  fam->setText(1, f.enabled ? tr("%n cell(s)", nullptr, static_cast<int>(cells)) : QString());
  for (int c = 0; c < fam->childCount(); ++c) {
    QTreeWidgetItem* par = fam->child(c);
    if (par->data(0, kKindRole).toInt() != kParamItem) continue;
    const GridParam& p = f.params[static_cast<size_t>(par->data(0, kParamRole).toInt())];
    const size_t n = p.varied_values().size();
    par->setText(1, n ? tr("%n value(s)", nullptr, static_cast<int>(n)) : tr("default"));
    QFont font = par->font(0);
    font.setBold(n > 0);
    par->setFont(0, font);
  }
  updating_ = was;
}

void SweepDialog::on_item_changed(QTreeWidgetItem* item, int column) {
  if (updating_ || column != 0) return;
  const int kind = item->data(0, kKindRole).toInt();
  const auto fi = static_cast<size_t>(item->data(0, kFamilyRole).toInt());
  if (fi >= model_.families.size()) return;
  GridFamily& f = model_.families[fi];
  const bool on = item->checkState(0) == Qt::Checked;
  if (kind == kFamilyItem) {
    f.enabled = on;
    if (on) item->setExpanded(true);
  } else if (kind == kCrossItem) {
    f.cross_kv = on;
  } else if (kind == kValueItem) {
    GridParam& p = f.params[static_cast<size_t>(item->data(0, kParamRole).toInt())];
    p.values[static_cast<size_t>(item->data(0, kValueRole).toInt())].checked = on;
    if (on && item->parent()) item->parent()->setExpanded(true);
    if (on && !f.enabled) {  // choosing a value of a family selects the family
      f.enabled = true;
      updating_ = true;
      tree_->topLevelItem(static_cast<int>(fi))->setCheckState(0, Qt::Checked);
      updating_ = false;
    }
  } else {
    return;
  }
  refresh_family_item(static_cast<int>(fi));
  rebuild_from_builder();
}

QTreeWidgetItem* SweepDialog::family_item(const QString& codec) const {
  for (int i = 0; i < tree_->topLevelItemCount(); ++i)
    if (tree_->topLevelItem(i)->text(0) == codec) return tree_->topLevelItem(i);
  return nullptr;
}

bool SweepDialog::set_family_enabled(const QString& codec, bool on) {
  QTreeWidgetItem* fam = family_item(codec);
  if (!fam) return false;
  fam->setCheckState(0, on ? Qt::Checked : Qt::Unchecked);
  return true;
}

bool SweepDialog::set_cross_kv(const QString& codec, bool on) {
  QTreeWidgetItem* fam = family_item(codec);
  if (!fam) return false;
  for (int c = 0; c < fam->childCount(); ++c) {
    if (fam->child(c)->data(0, kKindRole).toInt() == kCrossItem) {
      fam->child(c)->setCheckState(0, on ? Qt::Checked : Qt::Unchecked);
      return true;
    }
  }
  return false;
}

bool SweepDialog::set_value_checked(const QString& codec, const QString& param,
                                    const QString& value, bool on) {
  QTreeWidgetItem* fam = family_item(codec);
  if (!fam) return false;
  const GridFamily& f = model_.families[static_cast<size_t>(fam->data(0, kFamilyRole).toInt())];
  for (int c = 0; c < fam->childCount(); ++c) {
    QTreeWidgetItem* par = fam->child(c);
    if (par->data(0, kKindRole).toInt() != kParamItem || par->text(0) != param) continue;
    const GridParam& p = f.params[static_cast<size_t>(par->data(0, kParamRole).toInt())];
    for (int v = 0; v < par->childCount(); ++v) {
      const auto vi = static_cast<size_t>(par->child(v)->data(0, kValueRole).toInt());
      if (QString::fromStdString(p.values[vi].value) == value) {
        par->child(v)->setCheckState(0, on ? Qt::Checked : Qt::Unchecked);
        return true;
      }
    }
  }
  return false;
}

bool SweepDialog::set_fixed_enabled(const QString& key, bool on) {
  for (int i = 0; i < fixed_list_->count(); ++i) {
    if (fixed_list_->item(i)->data(Qt::UserRole).toString() == key) {
      fixed_list_->item(i)->setCheckState(on ? Qt::Checked : Qt::Unchecked);
      return true;
    }
  }
  return false;
}

void SweepDialog::rebuild_from_builder() {
  try {
    base_grid_ = build_grid(model_);
    grid_error_.clear();
  } catch (const std::exception& e) {
    base_grid_ = json::object();
    grid_error_ = dlg::error_text(e);
  }
  grid_source_ = tr("grid builder");
  show_grid();
}

void SweepDialog::set_grid(const json& grid, const QString& source) {
  base_grid_ = grid;
  grid_source_ = source;
  grid_error_.clear();
  show_grid();
}

void SweepDialog::show_grid() {
  // What Start runs: the base grid with the ticked fixed settings (shown below, exactly).
  grid_ = grid_error_.isEmpty() ? apply_fixed_options(base_grid_, model_.fixed) : base_grid_;
  source_label_->setText(tr("Source: %1 + the ticked fixed settings").arg(grid_source_));
  grid_text_->setPlainText(QString::fromStdString(grid_to_text(grid_)));
  cells_ = 0;
  dropped_ = 0;
  if (grid_error_.isEmpty()) {
    try {
      // Expanding applies each cell's options to a configuration: cheap, no capture I/O.
      cells_ = sessions::expand_sweep_grid(grid_, "sweep grid", &dropped_).size();
    } catch (const std::exception& e) {
      grid_error_ = dlg::error_text(e);
    }
  }
  if (!grid_error_.isEmpty()) {
    cells_label_->setStyleSheet(dlg::error_style());
    cells_label_->setText(grid_error_);
  } else {
    cells_label_->setStyleSheet(QString());
    QString t = tr("<b>%n cell(s)</b> will run", nullptr, static_cast<int>(cells_));
    if (dropped_)
      t += tr(" (%n duplicate configuration(s) dropped)", nullptr, static_cast<int>(dropped_));
    cells_label_->setText(t);
  }
  update_buttons();
}

bool SweepDialog::load_grid_file(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) {
    show_error(tr("%1: cannot open (%2)").arg(path, f.errorString()));
    return false;
  }
  const QByteArray bytes = f.readAll();
  json j = json::parse(bytes.constData(), bytes.constData() + bytes.size(), nullptr, false);
  if (j.is_discarded()) {
    show_error(tr("%1: not valid JSON").arg(path));
    return false;
  }
  set_grid(j, QFileInfo(path).fileName());
  if (!grid_error_.isEmpty()) {
    show_error(grid_error_);
    return false;
  }
  status_label_->setStyleSheet(QString());
  status_label_->setText(tr("Loaded %1").arg(QDir::toNativeSeparators(path)));
  return true;
}

bool SweepDialog::save_grid_file(const QString& path) {
  try {
    views::write_bytes_atomic(path, QByteArray::fromStdString(grid_to_text(grid_)));
  } catch (const std::exception& e) {
    show_error(dlg::error_text(e));
    return false;
  }
  status_label_->setStyleSheet(QString());
  status_label_->setText(tr("Saved %1").arg(QDir::toNativeSeparators(path)));
  return true;
}

void SweepDialog::set_sweep_name(const QString& name) {
  name_edit_->setText(name);
  if (!store_edited_) store_edit_->setText(wb_.default_store_dir(name));
}

void SweepDialog::set_store_dir(const QString& dir) {
  store_edit_->setText(dir);
  store_edited_ = true;
}

QString SweepDialog::store_dir() const { return store_edit_->text(); }

void SweepDialog::set_resume(bool on) { resume_box_->setChecked(on); }

void SweepDialog::set_end_to_end(const QString& model_dir, const QString& text_file, int context,
                                 int continuation, int passages) {
  e2e_model_->setText(model_dir);
  e2e_text_->setText(text_file);
  e2e_context_->setValue(context);
  e2e_continuation_->setValue(continuation);
  e2e_passages_->setValue(passages);
  e2e_box_->setChecked(!model_dir.isEmpty());
}

bool SweepDialog::end_to_end_enabled() const {
  return e2e_box_->isChecked() && !e2e_model_->text().trimmed().isEmpty();
}

void SweepDialog::show_error(const QString& text) {
  status_label_->setStyleSheet(dlg::error_style());
  status_label_->setText(text);
}

void SweepDialog::update_buttons() {
  if (!start_button_) return;
  const bool busy = running();
  start_button_->setEnabled(!busy && cells_ > 0);
  cancel_button_->setEnabled(job_id_ >= 0);
  slurm_button_->setEnabled(cells_ > 0);
  name_edit_->setEnabled(!busy);
  store_edit_->setEnabled(!busy);
  resume_box_->setEnabled(!busy);
  e2e_box_->setEnabled(!busy);
  for (QWidget* w : std::initializer_list<QWidget*>{e2e_model_, e2e_text_, e2e_context_,
                                                    e2e_continuation_, e2e_passages_})
    w->setEnabled(!busy && e2e_box_->isChecked());
  tree_->setEnabled(!busy);
  fixed_list_->setEnabled(!busy);
}

bool SweepDialog::start() {
  if (running()) return false;
  if (cells_ == 0) {
    show_error(grid_error_.isEmpty() ? tr("The grid has no cells") : grid_error_);
    return false;
  }
  const QString name = name_edit_->text().trimmed();
  const QString store = store_edit_->text().trimmed();
  if (name.isEmpty()) {
    show_error(tr("Give the sweep a name"));
    return false;
  }
  if (store.isEmpty()) {
    show_error(tr("Choose a result-store folder"));
    return false;
  }
  if (wb_.capture_path().isEmpty()) {
    show_error(tr("Open a capture first"));
    return false;
  }
  if (e2e_box_->isChecked() &&
      (e2e_model_->text().trimmed().isEmpty() || e2e_text_->text().trimmed().isEmpty())) {
    show_error(
        tr("End-to-end axes need a model folder and a text file: choose both, or untick "
           "\"End-to-end axes\" for a proxy-only sweep"));
    (e2e_model_->text().trimmed().isEmpty() ? e2e_model_ : e2e_text_)->setFocus();
    return false;
  }
  if (!resume_box_->isChecked()) {
    const QDir dir(store);
    if (dir.exists() &&
        !dir.entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden).isEmpty()) {
      show_error(tr("The store folder %1 already holds a sweep's results. Tick \"Resume\" to "
                    "continue that sweep (the cells it holds are skipped), or press \"New "
                    "folder\" to start a fresh store.")
                     .arg(QDir::toNativeSeparators(store)));
      return false;
    }
  }
  summary_label_->clear();
  status_label_->setStyleSheet(QString());
  if (!resume_box_->isChecked()) {
    launch(0, {});
    return job_id_ >= 0;
  }
  // Resume: count what the store already holds (in a job: the store may be large).
  preparing_ = true;
  status_label_->setText(tr("Reading the store\u2026"));
  update_buttons();
  QPointer<SweepDialog> self(this);
  const std::string dir = store.toStdString();
  wb_.start_job(tr("Sweep: read store"),
                [self, dir](JobControl&) -> Workbench::Continuation {
                  auto keys = std::make_shared<std::set<std::string>>();
                  auto err = std::make_shared<QString>();
                  try {
                    for (const auto& r : sessions::read_result_store(dir).records)
                      keys->insert(r.value("key", std::string()));
                  } catch (const std::exception& e) {
                    *err = dlg::error_text(e);
                  }
                  return [self, keys, err] {
                    if (!self) return;
                    self->preparing_ = false;
                    if (!err->isEmpty()) {
                      self->show_error(*err);
                      self->update_buttons();
                      return;
                    }
                    self->launch(keys->size(), *keys);
                  };
                });
  return true;
}

void SweepDialog::launch(size_t before_records, std::set<std::string> before_keys) {
  before_records_ = before_records;
  before_keys_ = std::move(before_keys);
  cancelled_ = false;
  failure_.clear();
  run_store_ = store_edit_->text().trimmed();
  run_cells_ = cells_;
  try {
    sessions::EndToEndRequest e2e;
    if (end_to_end_enabled()) {
      e2e.model_path = e2e_model_->text().trimmed().toStdString();
      e2e.text_path = e2e_text_->text().trimmed().toStdString();
      e2e.eval.context = e2e_context_->value();
      e2e.eval.continuation = e2e_continuation_->value();
      e2e.eval.passages = e2e_passages_->value();
    }
    job_id_ = wb_.start_sweep(name_edit_->text().trimmed(), grid_, run_store_,
                              resume_box_->isChecked(), e2e);
  } catch (const std::exception& e) {
    job_id_ = -1;
    show_error(dlg::error_text(e));
    update_buttons();
    return;
  }
  job_name_.clear();
  for (const auto& j : wb_.jobs())
    if (j.id == job_id_) job_name_ = j.name;
  progress_->setRange(0, static_cast<int>(run_cells_));
  progress_->setValue(static_cast<int>(before_records_));
  progress_->setFormat(tr("starting\u2026"));
  status_label_->setText(tr("Running %n cell(s) into %1", nullptr, static_cast<int>(run_cells_))
                             .arg(QDir::toNativeSeparators(run_store_)));
  results_->setRowCount(0);
  update_buttons();
  on_jobs_changed();
}

void SweepDialog::on_jobs_changed() {
  if (job_id_ < 0) return;
  for (const auto& j : wb_.jobs()) {
    if (j.id != job_id_) continue;
    if (job_name_.isEmpty()) job_name_ = j.name;
    if (j.total > 0) {
      progress_->setRange(0, static_cast<int>(j.total));
      progress_->setValue(static_cast<int>(j.done));
      const size_t k = std::min(j.done + 1, j.total);
      QString t = tr("cell %1 of %2").arg(k).arg(j.total);
      if (j.done >= j.total) t = tr("%1 of %2 cells").arg(j.done).arg(j.total);
      progress_->setFormat(j.cancelling ? t + tr(" \u2014 cancelling\u2026") : t);
    }
    if (!j.detail.isEmpty()) status_label_->setText(j.detail);
    return;
  }
  finish();  // the job is gone: it finished, failed or was cancelled
}

SlurmDialog* SweepDialog::open_slurm_dialog() {
  if (cells_ == 0) {
    show_error(grid_error_.isEmpty() ? tr("The grid has no cells") : grid_error_);
    return nullptr;
  }
  if (end_to_end_enabled() && e2e_text_->text().trimmed().isEmpty()) {
    show_error(tr("End-to-end axes need a text file to evaluate on"));
    return nullptr;
  }
  // The end-to-end axes travel as kvwb sweep arguments with absolute paths.
  std::vector<std::string> args;
  if (end_to_end_enabled()) {
    auto abs = [](const QString& p) { return QFileInfo(p.trimmed()).absoluteFilePath().toStdString(); };
    args = {"--model", abs(e2e_model_->text()), "--text", abs(e2e_text_->text())};
    if (e2e_context_->value() > 0) args.insert(args.end(), {"--context", std::to_string(e2e_context_->value())});
    args.insert(args.end(), {"--continuation", std::to_string(e2e_continuation_->value()), "--passages",
                             std::to_string(e2e_passages_->value())});
  }
  auto* d = new SlurmDialog(wb_, grid_, cells_, std::move(args), this);
  d->setAttribute(Qt::WA_DeleteOnClose);
  d->show();
  return d;
}

void SweepDialog::cancel() {
  if (job_id_ >= 0) wb_.cancel_job(job_id_);
}

void SweepDialog::finish() {
  job_id_ = -1;
  preparing_ = true;  // until the summary is read
  update_buttons();
  QPointer<SweepDialog> self(this);
  const std::string dir = run_store_.toStdString();
  wb_.start_job(
      tr("Sweep: summary"), [self, dir](JobControl&) -> Workbench::Continuation {
        auto contents = std::make_shared<sessions::StoreContents>();
        auto table = std::make_shared<json>();
        auto err = std::make_shared<QString>();
        try {
          *contents = sessions::read_result_store(dir);
          *table = sessions::sweep_table_json(contents->records);
        } catch (const std::exception& e) {
          *err = dlg::error_text(e);
        }
        return [self, contents, table, err] {
          if (!self) return;
          SweepDialog& d = *self;
          d.preparing_ = false;
          size_t failed = 0, now = 0;
          for (const auto& r : contents->records) {
            if (d.before_keys_.count(r.value("key", std::string()))) continue;
            ++now;
            if (r.value("status", std::string()) != "ok") ++failed;
          }
          const size_t stored = contents->records.size();
          QString s;
          if (!d.failure_.isEmpty()) {
            d.show_error(d.failure_);
            s = tr("Stopped by an error: ");
          } else if (d.cancelled_) {
            s = tr("Cancelled: ");
            d.status_label_->setStyleSheet(QString());
            d.status_label_->setText(
                tr("Cancelled; finished cells stay in the store (Resume continues it)."));
          } else {
            s = tr("Done: ");
            d.status_label_->setStyleSheet(QString());
            d.status_label_->setText(
                tr("Sweep finished: %1").arg(QDir::toNativeSeparators(d.run_store_)));
          }
          s += tr("ran %1, skipped %2, failed %3; the store holds %4 of %5 cells.")
                   .arg(now)
                   .arg(d.before_records_)
                   .arg(failed)
                   .arg(stored)
                   .arg(d.run_cells_);
          if (!err->isEmpty()) s += QStringLiteral(" ") + *err;
          d.summary_label_->setText(s);
          d.progress_->setRange(0, static_cast<int>(std::max<size_t>(d.run_cells_, 1)));
          d.progress_->setValue(static_cast<int>(std::min(stored, d.run_cells_)));
          d.progress_->setFormat(tr("%1 of %2 cells stored").arg(stored).arg(d.run_cells_));
          const json& rows = table->value("rows", json::array());
          d.results_->setRowCount(static_cast<int>(rows.size()));
          int i = 0;
          for (const auto& row : rows) {
            const bool ok = row.value("failure", json(nullptr)).is_null();
            auto* cell = new QTableWidgetItem(QString::number(row.value("cell", -1)));
            cell->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            d.results_->setItem(i, 0, cell);
            d.results_->setItem(
                i, 1, new QTableWidgetItem(options_text(row.value("options", json::object()))));
            auto* ratio =
                new QTableWidgetItem(fmt_num(row.value("ratio_vs_bf16", json(nullptr)), "%.4f"));
            ratio->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            d.results_->setItem(i, 2, ratio);
            auto* err_item =
                new QTableWidgetItem(fmt_num(row.value("attn_out_rel_err", json(nullptr)), "%.4g"));
            err_item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            d.results_->setItem(i, 3, err_item);
            auto* st = new QTableWidgetItem(
                ok ? tr("ok") : QString::fromStdString(row.value("failure", std::string())));
            if (!ok) st->setForeground(QColor(0xc0, 0x39, 0x2b));
            d.results_->setItem(i, 4, st);
            ++i;
          }
          d.results_->resizeColumnsToContents();
          d.results_->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);
          d.update_buttons();
        };
      });
}

QString SweepDialog::status_text() const { return status_label_->text(); }
QString SweepDialog::summary_text() const { return summary_label_->text(); }
int SweepDialog::progress_value() const { return progress_->value(); }
int SweepDialog::progress_maximum() const { return progress_->maximum(); }
int SweepDialog::result_rows() const { return results_->rowCount(); }

}  // namespace kvwb::app
