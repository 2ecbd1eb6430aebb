#include "views/config_view.h"

#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFrame>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QScrollArea>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QStyledItemDelegate>
#include <QVBoxLayout>
#include <cmath>

#include "base/errors.h"
#include "codec/traits.h"
#include "sessions/run/backends.h"

namespace kvwb::views {

namespace {

constexpr const char* kLoaded = "kvwb_loaded_text";

QString qs(const std::string& s) { return QString::fromStdString(s); }

QWidget* row(QWidget* parent, std::initializer_list<QWidget*> widgets, int stretch_index = 0) {
  auto* w = new QWidget(parent);
  auto* l = new QHBoxLayout(w);
  l->setContentsMargins(0, 0, 0, 0);
  l->setSpacing(4);
  int i = 0;
  for (QWidget* x : widgets) l->addWidget(x, i++ == stretch_index ? 1 : 0);
  return w;
}

/// Editors of the per-layer table: a combo box of the codecs or of the codec's bit widths.
class LayerCellDelegate : public QStyledItemDelegate {
 public:
  using QStyledItemDelegate::QStyledItemDelegate;
  QWidget* createEditor(QWidget* parent, const QStyleOptionViewItem& option,
                        const QModelIndex& index) const override {
    const QString kind = index.data(Qt::UserRole + 1).toString();
    if (kind != "codec" && kind != "bits")
      return QStyledItemDelegate::createEditor(parent, option, index);
    auto* combo = new QComboBox(parent);
    const auto choices =
        kind == "codec"
            ? layer_column_choices(LayerColumn::kKCodec, "")
            : layer_column_choices(LayerColumn::kKBits,
                                   index.data(Qt::UserRole + 2).toString().toStdString());
    for (const auto& c : choices) combo->addItem(QString::fromStdString(c));
    return combo;
  }
  void setEditorData(QWidget* editor, const QModelIndex& index) const override {
    if (auto* combo = qobject_cast<QComboBox*>(editor)) {
      combo->setCurrentIndex(std::max(0, combo->findText(index.data().toString())));
      return;
    }
    QStyledItemDelegate::setEditorData(editor, index);
  }
  void setModelData(QWidget* editor, QAbstractItemModel* model,
                    const QModelIndex& index) const override {
    if (auto* combo = qobject_cast<QComboBox*>(editor)) {
      if (combo->currentText() != index.data().toString())
        model->setData(index, combo->currentText());
      return;
    }
    QStyledItemDelegate::setModelData(editor, model, index);
  }
};

}  // namespace

ConfigView::ConfigView(QWidget* parent) : View("config", "Configuration", parent) {
  k_.tag = 'k';
  v_.tag = 'v';
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(6, 6, 6, 6);
  outer->setSpacing(4);

  // Header: title, edited state, Revert and Run.
  header_ = new QLabel(this);
  header_->setTextFormat(Qt::RichText);
  status_ = new QLabel(this);
  status_->setObjectName("config.status");
  status_->setStyleSheet("color: #b35c00; font-weight: bold;");
  revert_ = new QPushButton("Revert", this);
  revert_->setObjectName("config.revert");
  revert_->setToolTip("Drop the edits and show the current configuration again");
  run_ = new QPushButton("Run", this);
  run_->setObjectName("config.run");
  run_->setDefault(true);
  run_->setToolTip("Validate the form and run this configuration");
  auto* top = new QHBoxLayout();
  top->addWidget(header_, 1);
  top->addWidget(status_);
  top->addWidget(revert_);
  top->addWidget(run_);
  outer->addLayout(top);

  auto* scroll = new QScrollArea(this);
  scroll->setWidgetResizable(true);
  scroll->setFrameShape(QFrame::NoFrame);
  auto* body = new QWidget(scroll);
  body_ = body;
  grid_ = new QGridLayout(body);
  grid_->setContentsMargins(0, 0, 0, 0);
  grid_->setSpacing(8);
  scroll->setWidget(body);
  outer->addWidget(scroll, 1);

  // Run-level settings.
  auto* run_box = new QGroupBox("Run", body);
  auto* rf = new QFormLayout(run_box);
  rf->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  block_size_ = new QComboBox(run_box);
  block_size_->setObjectName("config.block_size");
  block_size_->setEditable(true);
  for (const char* b : {"64", "128", "256", "512", "1024", "2048", "4096"}) block_size_->addItem(b);
  block_size_->setToolTip("Rows per block, run-level for every codec (8 … 65536)");
  rf->addRow("Block size (rows)", block_size_);
  block_rows_ = new QComboBox(run_box);
  block_rows_->setObjectName("config.block_rows");
  block_rows_->addItems({"per_head", "pooled_heads"});
  block_rows_->setToolTip(
      "per_head: one unit per kv head; pooled_heads: the heads' rows pooled (Kakeya-PCA, "
      "Besicovitch)");
  rf->addRow("Block rows", block_rows_);
  layers_ = new QLineEdit(run_box);
  layers_->setObjectName("config.layers");
  layers_->setPlaceholderText("all full-attention layers");
  layers_->setToolTip("Layers to run, e.g. 0,2-3; empty = every full-attention layer");
  rf->addRow("Layers", layers_);
  include_sliding_ = new QCheckBox("include sliding-window layers", run_box);
  include_sliding_->setObjectName("config.include_sliding");
  rf->addRow("", include_sliding_);
  boundary_ = new QLineEdit(run_box);
  boundary_->setObjectName("config.boundary");
  boundary_->setPlaceholderText("none, e.g. 0,3");
  boundary_->setToolTip("Boundary layers (both streams stored bf16), e.g. 0,3 or 0-1,26");
  rf->addRow("Boundary layers", boundary_);
  q_mode_ = new QComboBox(run_box);
  q_mode_->setObjectName("config.q_precond");
  q_mode_->addItem("off", "off");
  q_mode_->addItem("Σ_q from the capture (q_pre)", "capture");
  q_mode_->addItem("Σ_q safetensors file", "file");
  q_mode_->setToolTip("Q-preconditioning of K (codec-kakeya.md §8)");
  rf->addRow("Q-preconditioning", q_mode_);
  q_file_ = new QLineEdit(run_box);
  q_file_->setObjectName("config.q_precond_file");
  q_file_->setPlaceholderText("Σ_q .safetensors");
  q_browse_ = new QPushButton("Browse…", run_box);
  q_browse_->setObjectName("config.q_precond_browse");
  rf->addRow("Σ_q file", row(run_box, {q_file_, q_browse_}));
  q_auto_skip_ = new QCheckBox("automatic Σ_q skip rule", run_box);
  q_auto_skip_->setObjectName("config.q_precond_auto_skip");
  q_auto_skip_->setToolTip(
      "Skip Q-preconditioning on layers with an extreme Σ_q (decisions.md #4)");
  rf->addRow("", q_auto_skip_);
  target_cond_ = new QLineEdit(run_box);
  target_cond_->setObjectName("config.target_cond");
  target_cond_->setPlaceholderText("none (> 1)");
  target_cond_->setToolTip(
      "Tikhonov re-regularisation target condition number (> 1; empty = none)");
  rf->addRow("target_cond", target_cond_);
  turbo_policy_ = new QComboBox(run_box);
  turbo_policy_->setObjectName("config.turbo_policy");
  turbo_policy_->addItems({"none", "fork_auto", "mode1", "mode2", "mode5", "mode6", "mode7"});
  turbo_policy_->setToolTip("TurboQuant per-layer policy (codec-peers.md §1.7)");
  rf->addRow("turbo_policy", turbo_policy_);
  attention_ = new QCheckBox("attention metrics (layers with q_pre)", run_box);
  attention_->setObjectName("config.attention_metrics");
  rf->addRow("", attention_);
  attn_sample_ = new QComboBox(run_box);
  attn_sample_->setObjectName("config.attn_sample");
  attn_sample_->setEditable(true);
  attn_sample_->addItems({"64", "128", "256", "512", "1024", "all"});
  attn_sample_->setToolTip(
      "Attention metrics on this many query positions per (sequence, q head), the same positions "
      "in every layer and configuration; \"all\" = exact (slow on long captures). Default 256.");
  rf->addRow("attention sample", attn_sample_);
  backend_ = new QComboBox(run_box);
  backend_->setObjectName("config.backend");
  {
    auto* model = new QStandardItemModel(backend_);
    for (const auto& b : sessions::list_backends()) {
      auto* item = new QStandardItem(qs(b.name));
      item->setData(qs(b.name), Qt::UserRole);
      item->setToolTip(qs(b.detail.empty() ? b.name : b.detail));
      if (!b.available) {
        item->setEnabled(false);
        item->setText(qs(b.name) + " (unavailable)");
      }
      model->appendRow(item);
    }
    auto* autob = new QStandardItem("auto");
    autob->setData("auto", Qt::UserRole);
    autob->setToolTip("CUDA when available, otherwise CPU");
    model->appendRow(autob);
    backend_->setModel(model);
  }
  rf->addRow("Backend", backend_);
  run_box_ = run_box;
  k_.box = build_stream_section(k_, "K stream", true);
  v_.box = build_stream_section(v_, "V stream", false);

  // Per-layer table: what every layer really gets (global stream or the layer's override).
  auto* layer_box = new QGroupBox("Per-layer settings (override the global K / V streams)", body);
  layer_box_ = layer_box;
  auto* ll = new QVBoxLayout(layer_box);
  ll->setContentsMargins(6, 6, 6, 6);
  auto* layer_hint = new QLabel(
      "Edit a cell (double-click, F2 or type; Space ticks bf16 / Σ_q skip). A stream set like the "
      "global one follows it again. Bold blue: the layer overrides the global stream (e.g. after "
      "Apply plan). Run applies the edits.",
      layer_box);
  layer_hint->setWordWrap(true);
  layer_hint->setStyleSheet("color: #555;");
  ll->addWidget(layer_hint);
  layer_table_ = make_row_table(
      layer_box,
      {"Layer", "K codec", "K bits", "V codec", "V bits", "bf16", "Σ_q skip", "ratio (run)"},
      "config.layer_table");
  layer_table_->setEditTriggers(QAbstractItemView::DoubleClicked |
                                QAbstractItemView::EditKeyPressed |
                                QAbstractItemView::AnyKeyPressed);
  layer_table_->setItemDelegate(new LayerCellDelegate(layer_table_));
  layer_table_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  layer_table_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::ResizeToContents);
  layer_table_->setMinimumHeight(160);
  ll->addWidget(layer_table_);
  relayout();
  connect(layer_table_, &QTableWidget::itemChanged, this, [this](QTableWidgetItem* it) {
    if (filling_table_ || !it) return;
    const int row = it->row(), c = it->column();
    if (row < 0 || row >= static_cast<int>(table_.rows.size())) return;
    static const LayerColumn kCols[] = {
        LayerColumn::kKCodec, LayerColumn::kKCodec,   LayerColumn::kKBits, LayerColumn::kVCodec,
        LayerColumn::kVBits,  LayerColumn::kBoundary, LayerColumn::kQSkip};
    if (c < 1 || c > 6) return;
    const std::string value = (c == 5 || c == 6)
                                  ? std::string(it->checkState() == Qt::Checked ? "true" : "false")
                                  : it->text().toStdString();
    edit_layer(table_.rows[static_cast<size_t>(row)].layer, kCols[c], value);
  });
  connect(
      layer_table_, &QTableWidget::currentCellChanged, this, [this](int row, int, int prev, int) {
        if (filling_table_ || row < 0 || row == prev || row >= static_cast<int>(table_.rows.size()))
          return;
        emit select_requested(table_.rows[static_cast<size_t>(row)].layer,
                              snapshot_ ? std::max(0, snapshot_->selection.kv_head) : 0);
      });

  error_ = new QLabel(this);
  error_->setObjectName("config.error");
  error_->setWordWrap(true);
  error_->setStyleSheet("color: #c00000; font-weight: bold;");
  error_->setVisible(false);
  outer->addWidget(error_);

  connect(run_, &QPushButton::clicked, this, [this] { run(); });
  connect(revert_, &QPushButton::clicked, this, [this] { revert(); });
  connect(q_browse_, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, "Σ_q safetensors file", q_file_->text(),
                                                   "safetensors (*.safetensors);;All files (*)");
    if (!f.isEmpty()) {
      q_file_->setText(f);
      q_mode_->setCurrentIndex(q_mode_->findData("file"));
    }
  });
  auto edited = [this] { mark_edited(); };
  connect(block_size_, &QComboBox::currentTextChanged, this, edited);
  connect(block_rows_, &QComboBox::currentIndexChanged, this, edited);
  connect(layers_, &QLineEdit::textEdited, this, edited);
  connect(include_sliding_, &QCheckBox::toggled, this, edited);
  connect(boundary_, &QLineEdit::textEdited, this, edited);
  connect(q_mode_, &QComboBox::currentIndexChanged, this, [this] {
    const bool file = q_mode_->currentData().toString() == "file";
    q_file_->setEnabled(file);
    mark_edited();
  });
  connect(q_file_, &QLineEdit::textChanged, this, edited);
  connect(q_auto_skip_, &QCheckBox::toggled, this, edited);
  connect(target_cond_, &QLineEdit::textEdited, this, edited);
  connect(turbo_policy_, &QComboBox::currentIndexChanged, this, edited);
  connect(attention_, &QCheckBox::toggled, this, edited);
  connect(attention_, &QCheckBox::toggled, attn_sample_, &QWidget::setEnabled);
  connect(attn_sample_, &QComboBox::currentTextChanged, this, edited);
  connect(backend_, &QComboBox::currentIndexChanged, this, edited);

  loading_ = true;
  set_form(form_from_config(sessions::RunConfig{}));
  loading_ = false;
  edited_ = false;
  update_header();
}

QWidget* ConfigView::build_stream_section(StreamWidgets& s, const QString& title, bool is_k) {
  auto* box = new QGroupBox(title, this);
  auto* layout = new QVBoxLayout(box);
  layout->setSpacing(2);
  auto* top = new QFormLayout();
  top->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  const QString tag = is_k ? "k" : "v";
  s.codec = new QComboBox(box);
  s.codec->setObjectName(tag + ".codec");
  for (const auto& n : codec::codec_names()) s.codec->addItem(qs(n));
  s.codec->setToolTip("Codec of the " + title + " (kvwb codecs lists them)");
  top->addRow("Codec", s.codec);
  if (is_k) {
    s.k_domain = new QComboBox(box);
    s.k_domain->setObjectName("k.k_domain");
    s.k_domain->addItem("codec default", "");
    s.k_domain->addItem("pre_rope", "pre_rope");
    s.k_domain->addItem("post_rope", "post_rope");
    s.k_domain->setToolTip(
        "Domain K is coded in (decisions.md #2): pre-RoPE (Kakeya-PCA, Besicovitch default) or "
        "post-RoPE");
    top->addRow("K domain", s.k_domain);
    connect(s.k_domain, &QComboBox::currentIndexChanged, this, [this] { mark_edited(); });
  }
  s.centroids = new QLineEdit(box);
  s.centroids->setObjectName(tag + ".centroids_file");
  s.centroids->setPlaceholderText("Gaussian (none)");
  s.centroids->setToolTip("Kakeya-PCA: calibrated Lloyd-Max table (.f32); empty = Gaussian");
  auto* browse = new QPushButton("…", box);
  s.centroids_browse = browse;
  browse->setObjectName(tag + ".centroids_browse");
  browse->setMaximumWidth(28);
  top->addRow("Centroids file", row(box, {s.centroids, browse}));
  layout->addLayout(top);
  auto* line = new QFrame(box);
  line->setFrameShape(QFrame::HLine);
  line->setFrameShadow(QFrame::Sunken);
  layout->addWidget(line);
  s.notice = new QLabel(box);
  s.notice->setObjectName(tag + ".override_notice");
  s.notice->setWordWrap(true);
  s.notice->setStyleSheet("color: #1f4e9c;");
  s.notice->setVisible(false);
  layout->addWidget(s.notice);
  s.notice_apply = new QPushButton("Apply to every layer", box);
  s.notice_apply->setObjectName(tag + ".apply_every_layer");
  s.notice_apply->setToolTip(
      "Drop the per-layer overrides of this stream: the settings above "
      "apply to every layer (Run applies it)");
  s.notice_apply->setVisible(false);
  layout->addWidget(s.notice_apply, 0, Qt::AlignLeft);
  connect(s.notice_apply, &QPushButton::clicked, this,
          [this, is_k] { apply_stream_to_every_layer(is_k); });
  s.params_host = new QWidget(box);
  s.params_form = new QFormLayout(s.params_host);
  s.params_form->setContentsMargins(0, 0, 0, 0);
  s.params_form->setVerticalSpacing(3);
  s.params_form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  layout->addWidget(s.params_host);
  layout->addStretch(1);

  StreamWidgets* sp = &s;
  connect(s.codec, &QComboBox::currentTextChanged, this, [this, sp] {
    if (loading_) return;
    rebuild_params(*sp, {});
    update_centroids(*sp);
    mark_edited();
  });
  connect(s.centroids, &QLineEdit::textChanged, this, [this] { mark_edited(); });
  connect(browse, &QPushButton::clicked, this, [this, sp] {
    const QString f = QFileDialog::getOpenFileName(this, "Centroid table", sp->centroids->text(),
                                                   "f32 tables (*.f32);;All files (*)");
    if (!f.isEmpty()) sp->centroids->setText(f);
  });
  return box;
}

void ConfigView::rebuild_params(StreamWidgets& s,
                                const std::map<std::string, std::string>& values) {
  while (s.params_form->rowCount() > 0) s.params_form->removeRow(0);
  s.param_widgets.clear();
  s.specs = param_widget_specs(s.codec->currentText().toStdString());
  const QString tag(QChar(s.tag));
  if (s.specs.empty()) {
    auto* none = new QLabel("(no parameters)", s.params_host);
    none->setStyleSheet("color: gray;");
    s.params_form->addRow(none);
  }
  for (const auto& spec : s.specs) {
    const auto it = values.find(spec.name);
    const std::string text = it != values.end() ? it->second : spec.default_value;
    QWidget* w = nullptr;
    switch (spec.kind) {
      case ParamWidgetKind::kSpin: {
        auto* sb = new QSpinBox(s.params_host);
        sb->setRange(static_cast<int>(spec.min), static_cast<int>(spec.max));
        if (spec.optional) sb->setSpecialValueText("(none)");
        bool ok = false;
        const int v = QString::fromStdString(text).toInt(&ok);
        sb->setValue(ok ? v : static_cast<int>(spec.min));
        connect(sb, &QSpinBox::valueChanged, this, [this] { mark_edited(); });
        w = sb;
        break;
      }
      case ParamWidgetKind::kDoubleSpin: {
        auto* sb = new QDoubleSpinBox(s.params_host);
        sb->setDecimals(spec.decimals);
        sb->setRange(spec.min, spec.max);
        bool ok = false;
        const double v = QString::fromStdString(text).toDouble(&ok);
        sb->setValue(ok ? v : spec.min);
        connect(sb, &QDoubleSpinBox::valueChanged, this, [this] { mark_edited(); });
        w = sb;
        break;
      }
      case ParamWidgetKind::kCombo: {
        auto* cb = new QComboBox(s.params_host);
        for (const auto& c : spec.choices) cb->addItem(qs(c));
        const int i = cb->findText(qs(text));
        cb->setCurrentIndex(i >= 0 ? i : 0);
        connect(cb, &QComboBox::currentIndexChanged, this, [this] { mark_edited(); });
        w = cb;
        break;
      }
      case ParamWidgetKind::kCheck: {
        auto* ck = new QCheckBox(s.params_host);
        ck->setChecked(text == "true" || text == "1" || text == "on");
        connect(ck, &QCheckBox::toggled, this, [this] { mark_edited(); });
        w = ck;
        break;
      }
      case ParamWidgetKind::kLine: {
        auto* le = new QLineEdit(qs(text), s.params_host);
        le->setPlaceholderText(spec.optional ? "(none)" : qs(spec.default_value));
        connect(le, &QLineEdit::textEdited, this, [this] { mark_edited(); });
        w = le;
        break;
      }
    }
    w->setObjectName(tag + ".param." + qs(spec.name));
    w->setProperty(kLoaded, qs(text));
    w->setToolTip(qs(spec.tooltip));
    auto* label = new QLabel(qs(spec.name), s.params_host);
    label->setToolTip(qs(spec.tooltip));
    s.params_form->addRow(label, w);
    s.param_widgets.push_back(w);
  }
}

void ConfigView::update_centroids(StreamWidgets& s) {
  // A centroid table is a resource of codecs that use one (Kakeya-PCA); others ignore it (kept if
  // already set).
  const auto id = codec::find_codec_id(s.codec->currentText().toStdString());
  const bool table = id && codec::codec_traits(*id).centroid_table;
  s.centroids->setEnabled(table || !s.centroids->text().isEmpty());
  s.centroids_browse->setEnabled(table);
}

void ConfigView::set_stream(StreamWidgets& s, const StreamForm& f) {
  {
    const QSignalBlocker block(s.codec);
    s.codec->setCurrentIndex(s.codec->findText(qs(f.codec)));
  }
  if (s.k_domain) s.k_domain->setCurrentIndex(std::max(0, s.k_domain->findData(qs(f.k_domain))));
  s.centroids->setText(qs(f.centroids_file));
  update_centroids(s);
  rebuild_params(s, f.params);
}

StreamForm ConfigView::read_stream(const StreamWidgets& s, bool is_k) const {
  StreamForm f;
  f.codec = s.codec->currentText().toStdString();
  if (is_k && s.k_domain) f.k_domain = s.k_domain->currentData().toString().toStdString();
  f.centroids_file = s.centroids->text().trimmed().toStdString();
  for (size_t i = 0; i < s.specs.size(); ++i) {
    const auto& spec = s.specs[i];
    QWidget* w = s.param_widgets[i];
    const QString loaded = w->property(kLoaded).toString();
    QString text;
    switch (spec.kind) {
      case ParamWidgetKind::kSpin: {
        const auto* sb = static_cast<const QSpinBox*>(w);
        text = (spec.optional && sb->value() == sb->minimum()) ? QString()
                                                               : QString::number(sb->value());
        break;
      }
      case ParamWidgetKind::kDoubleSpin: {
        const auto* sb = static_cast<const QDoubleSpinBox*>(w);
        bool ok = false;
        const double before = loaded.toDouble(&ok);
        // Keep the loaded text when the (rounded) value was not changed, so round trips are exact.
        text = ok && std::abs(sb->value() - before) < 0.5 * std::pow(10.0, -sb->decimals())
                   ? loaded
                   : QString::number(sb->value(), 'g', 10);
        break;
      }
      case ParamWidgetKind::kCombo:
        text = static_cast<const QComboBox*>(w)->currentText();
        break;
      case ParamWidgetKind::kCheck:
        text = static_cast<const QCheckBox*>(w)->isChecked() ? "true" : "false";
        break;
      case ParamWidgetKind::kLine:
        text = static_cast<const QLineEdit*>(w)->text().trimmed();
        break;
    }
    f.params[spec.name] = text.toStdString();
  }
  return f;
}

void ConfigView::set_form(const ConfigForm& f) {
  block_size_->setCurrentText(qs(f.block_size));
  block_rows_->setCurrentIndex(std::max(0, block_rows_->findText(qs(f.block_rows))));
  layers_->setText(qs(f.layers));
  include_sliding_->setChecked(f.include_sliding);
  boundary_->setText(qs(f.boundary));
  q_mode_->setCurrentIndex(std::max(0, q_mode_->findData(qs(f.q_precond_mode))));
  q_file_->setText(qs(f.q_precond_file));
  q_file_->setEnabled(f.q_precond_mode == "file");
  q_auto_skip_->setChecked(f.q_precond_auto_skip);
  target_cond_->setText(qs(f.target_cond));
  turbo_policy_->setCurrentIndex(std::max(0, turbo_policy_->findText(qs(f.turbo_policy))));
  attention_->setChecked(f.attention_metrics);
  attn_sample_->setCurrentText(qs(f.attn_sample));
  attn_sample_->setEnabled(f.attention_metrics);
  backend_->setCurrentIndex(std::max(0, backend_->findData(qs(f.backend), Qt::UserRole)));
  set_stream(k_, f.k);
  set_stream(v_, f.v);
  carried_ = f.carried;
}

ConfigForm ConfigView::form() const {
  ConfigForm f;
  f.block_size = block_size_->currentText().trimmed().toStdString();
  f.block_rows = block_rows_->currentText().toStdString();
  f.layers = layers_->text().trimmed().toStdString();
  f.include_sliding = include_sliding_->isChecked();
  f.boundary = boundary_->text().trimmed().toStdString();
  f.k = read_stream(k_, true);
  f.v = read_stream(v_, false);
  f.q_precond_mode = q_mode_->currentData().toString().toStdString();
  f.q_precond_file = q_file_->text().trimmed().toStdString();
  f.q_precond_auto_skip = q_auto_skip_->isChecked();
  f.target_cond = target_cond_->text().trimmed().toStdString();
  f.turbo_policy = turbo_policy_->currentText().toStdString();
  f.attention_metrics = attention_->isChecked();
  f.attn_sample = attn_sample_->currentText().trimmed().toStdString();
  f.backend = backend_->currentData(Qt::UserRole).toString().toStdString();
  f.carried = carried_;
  return f;
}

void ConfigView::load_config(const sessions::RunConfig& config) {
  loading_ = true;
  set_form(form_from_config(config));
  loading_ = false;
  edited_ = false;
  loaded_ = true;
  show_error({});
  clear_highlight();
  update_header();
  refresh_table();
}

void ConfigView::snapshot_changed() {
  if (!edited_ && snapshot_ && snapshot_->config) load_config(*snapshot_->config);
  update_header();
  refresh_table();
}

bool ConfigView::run() {
  clear_highlight();
  try {
    const sessions::RunConfig cfg = config_from_form(form());
    // A global stream edit that no layer would get is refused, never run silently.
    if (snapshot_ && snapshot_->config) {
      const LayerTable t = build_layer_table(cfg, snapshot_->capture, nullptr);
      const nlohmann::json now = sessions::run_config_to_json(cfg);
      const nlohmann::json before = sessions::run_config_to_json(*snapshot_->config);
      for (bool k : {true, false}) {
        const char* key = k ? "k" : "v";
        if (now[key] != before[key] && stream_fully_overridden(t, k)) {
          const QString msg =
              QString(
                  "Cannot run: the %1 stream settings you changed apply to no layer — every "
                  "layer overrides %1 (per-layer table). Press \"Apply to every layer\" under "
                  "the %1 stream to apply them, or Revert.")
                  .arg(k ? "K" : "V");
          show_error(msg);
          (k ? k_ : v_).notice_apply->setFocus();
          return false;
        }
      }
    }
    show_error({});
    QString label = "edited";
    if (snapshot_ && snapshot_->config) {
      const std::string layers = layer_changes_text(*snapshot_->config, cfg, snapshot_->capture);
      if (!layers.empty()) label += ": " + qs(layers);
    }
    edited_ = false;
    update_header();
    emit config_requested(cfg, label);
    return true;
  } catch (const std::exception& e) {
    show_error(QString("Cannot run: ") + e.what());
    highlight_field(QString::fromUtf8(e.what()));
  }
  return false;
}

void ConfigView::highlight_field(const QString& message) {
  QWidget* target = nullptr;
  const std::pair<const char*, QWidget*> keys[] = {
      {"block_size", block_size_}, {"block size", block_size_}, {"block_rows", block_rows_},
      {"boundary", boundary_},     {"layers", layers_},         {"target_cond", target_cond_},
      {"Q-precond", q_file_},      {"q_precond", q_file_},      {"turbo_policy", turbo_policy_},
      {"attn_sample", attn_sample_}};
  for (const auto& [key, w] : keys)
    if (message.contains(key)) {
      target = w;
      break;
    }
  // Codec parameters: "K stream: codec kakeya_pca: parameter 'seed' …".
  const int at = message.indexOf("parameter '");
  if (at >= 0) {
    const int end = message.indexOf('\'', at + 11);
    const QString name = message.mid(at + 11, end - at - 11);
    const QString tag = message.startsWith("Cannot run: V stream") ? "v" : "k";
    target = findChild<QWidget*>(tag + ".param." + name);
  }
  if (target) {
    target->setProperty("kvwb_invalid", true);
    target->setStyleSheet("border: 2px solid #c00000;");
    target->setFocus();
  }
}

void ConfigView::clear_highlight() {
  for (QWidget* w : findChildren<QWidget*>())
    if (w->property("kvwb_invalid").toBool()) {
      w->setProperty("kvwb_invalid", false);
      w->setStyleSheet({});
    }
}

void ConfigView::revert() {
  edited_ = false;
  if (snapshot_ && snapshot_->config)
    load_config(*snapshot_->config);
  else
    load_config(sessions::RunConfig{});
}

void ConfigView::mark_edited() {
  if (loading_) return;
  edited_ = true;
  update_header();
  refresh_table();
}

sessions::RunConfig ConfigView::pending_config() const {
  try {
    return config_from_form(form());
  } catch (const std::exception&) {
  }
  if (snapshot_ && snapshot_->config) return *snapshot_->config;
  return sessions::RunConfig{};
}

void ConfigView::load_layer_parts(const sessions::RunConfig& cfg) {
  const nlohmann::json canon = sessions::run_config_to_json(cfg);
  carried_["overrides"] = canon["overrides"];
  carried_["q_precond_skip_layers"] = canon["q_precond_skip_layers"];
  boundary_->setText(qs(layer_list_text(cfg.boundary)));
  mark_edited();
}

bool ConfigView::edit_layer(int layer, LayerColumn column, const std::string& value) {
  sessions::RunConfig cfg;
  try {
    cfg = config_from_form(form());
  } catch (const std::exception& e) {
    show_error(QString("Fix the form before editing layers: ") + e.what());
    refresh_table();
    return false;
  }
  try {
    cfg = edit_layer_cell(cfg, layer, column, value);
  } catch (const std::exception& e) {
    show_error(QString("Cannot set that cell: ") + e.what());
    refresh_table();
    return false;
  }
  show_error({});
  load_layer_parts(cfg);
  return true;
}

void ConfigView::apply_stream_to_every_layer(bool k_stream) {
  try {
    load_layer_parts(clear_stream_overrides(config_from_form(form()), k_stream));
    show_error({});
  } catch (const std::exception& e) {
    show_error(QString("Fix the form first: ") + e.what());
  }
}

QString ConfigView::override_notice_text(bool k_stream) const {
  const StreamWidgets& s = k_stream ? k_ : v_;
  return s.notice->isHidden() ? QString() : s.notice->text();
}

void ConfigView::refresh_table() {
  if (!layer_table_) return;
  const sessions::RunConfig cfg = pending_config();
  CaptureSummary capture;
  if (snapshot_) capture = snapshot_->capture;
  const sessions::RunResult* run =
      snapshot_ && snapshot_->run && !snapshot_->run_partial ? snapshot_->run.get() : nullptr;
  table_ = build_layer_table(cfg, capture, run);
  filling_table_ = true;
  const int selected = snapshot_ ? snapshot_->selection.layer : -1;
  layer_table_->setRowCount(static_cast<int>(table_.rows.size()));
  const QColor override_bg(0xe3, 0xec, 0xfa), override_fg(0x1f, 0x4e, 0x9c);
  auto text_item = [](const QString& t, bool editable) {
    auto* it = new QTableWidgetItem(t);
    if (!editable) it->setFlags(it->flags() & ~Qt::ItemIsEditable);
    return it;
  };
  for (size_t i = 0; i < table_.rows.size(); ++i) {
    const LayerTableRow& r = table_.rows[i];
    const int row = static_cast<int>(i);
    auto* layer =
        text_item(QString::number(r.layer) + (r.attention == "sliding" ? " (sl)" : ""), false);
    layer->setToolTip(r.in_run ? "in the run" : "not in the run (layers / sliding settings)");
    layer_table_->setItem(row, 0, layer);
    auto stream_cells = [&](int col, bool k) {
      const std::string& codec = k ? r.k_codec : r.v_codec;
      const std::string& bits = k ? r.k_bits : r.v_bits;
      const bool ov = k ? r.k_override : r.v_override;
      auto* c = text_item(qs(codec), true);
      c->setData(Qt::UserRole + 1, QString("codec"));
      auto* b = text_item(bits.empty() ? "—" : qs(bits), !bits.empty());
      b->setData(Qt::UserRole + 1, QString("bits"));
      b->setData(Qt::UserRole + 2, qs(codec));
      b->setTextAlignment(Qt::AlignCenter);
      for (QTableWidgetItem* x : {c, b}) {
        if (ov) {
          QFont f = x->font();
          f.setBold(true);
          x->setFont(f);
          x->setBackground(override_bg);
          x->setForeground(override_fg);
          x->setToolTip(
              QString("layer %1 overrides the global %2 stream").arg(r.layer).arg(k ? "K" : "V"));
        } else {
          x->setToolTip(QString("follows the global %1 stream").arg(k ? "K" : "V"));
        }
        if (!r.in_run) x->setForeground(QColor(150, 150, 150));
        if (r.boundary) x->setToolTip(x->toolTip() + " · bf16 (boundary) wins on this layer");
      }
      layer_table_->setItem(row, col, c);
      layer_table_->setItem(row, col + 1, b);
    };
    stream_cells(1, true);
    stream_cells(3, false);
    auto* bf = text_item(QString(), false);
    bf->setFlags((bf->flags() | Qt::ItemIsUserCheckable) & ~Qt::ItemIsEditable);
    bf->setCheckState(r.boundary ? Qt::Checked : Qt::Unchecked);
    bf->setToolTip("keep this layer bf16 (both streams; boundary_skip_layers)");
    layer_table_->setItem(row, 5, bf);
    auto* sk = text_item(r.q_skip_auto && *r.q_skip_auto ? "auto" : QString(), false);
    Qt::ItemFlags f = (sk->flags() | Qt::ItemIsUserCheckable) & ~Qt::ItemIsEditable;
    if (!table_.q_precond) f &= ~Qt::ItemIsEnabled;
    sk->setFlags(f);
    sk->setCheckState(r.q_skip_user ? Qt::Checked : Qt::Unchecked);
    sk->setToolTip(
        table_.q_precond
            ? QString("skip Q-preconditioning on this layer%1")
                  .arg(r.q_skip_auto && *r.q_skip_auto ? " (the skip rule skips it anyway)" : "")
            : QString("Q-preconditioning is off"));
    layer_table_->setItem(row, 6, sk);
    auto* ratio = text_item(r.ratio ? QString::asprintf("%.3f", *r.ratio) : QString("—"), false);
    ratio->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    ratio->setToolTip("bf16 bytes / container bytes of this layer in the current run");
    layer_table_->setItem(row, 7, ratio);
    if (r.layer == selected) layer_table_->selectRow(row);
  }
  filling_table_ = false;
  for (bool k : {true, false}) {
    StreamWidgets& s = k ? k_ : v_;
    const std::string n = override_notice(table_, k);
    s.notice->setText(qs(n));
    s.notice->setVisible(!n.empty());
    s.notice_apply->setVisible(!n.empty());
    s.notice->setStyleSheet(stream_fully_overridden(table_, k)
                                ? "color: #b00020; font-weight: bold;"
                                : "color: #1f4e9c;");
  }
}

void ConfigView::relayout() {
  if (!grid_) return;
  const int w = width();
  const int cols = w >= 900 ? 3 : (w >= 560 ? 2 : 1);
  if (cols == columns_) return;
  columns_ = cols;
  for (QWidget* x : {run_box_, k_.box, v_.box, layer_box_}) grid_->removeWidget(x);
  for (int c = 0; c < 3; ++c) grid_->setColumnStretch(c, 0);
  if (cols == 3) {
    grid_->addWidget(run_box_, 0, 0);
    grid_->addWidget(k_.box, 0, 1);
    grid_->addWidget(v_.box, 0, 2);
    grid_->addWidget(layer_box_, 1, 0, 1, 3);
    grid_->setColumnStretch(0, 10);
    grid_->setColumnStretch(1, 11);
    grid_->setColumnStretch(2, 11);
  } else if (cols == 2) {
    grid_->addWidget(run_box_, 0, 0, 1, 2);
    grid_->addWidget(k_.box, 1, 0);
    grid_->addWidget(v_.box, 1, 1);
    grid_->addWidget(layer_box_, 2, 0, 1, 2);
    grid_->setColumnStretch(0, 1);
    grid_->setColumnStretch(1, 1);
  } else {
    grid_->addWidget(run_box_, 0, 0);
    grid_->addWidget(k_.box, 1, 0);
    grid_->addWidget(v_.box, 2, 0);
    grid_->addWidget(layer_box_, 3, 0);
    grid_->setColumnStretch(0, 1);
  }
}

void ConfigView::resizeEvent(QResizeEvent* e) {
  View::resizeEvent(e);
  relayout();
}

void ConfigView::show_error(const QString& text) {
  error_->setText(text);
  error_->setVisible(!text.isEmpty());
}

void ConfigView::update_header() {
  QString h = "<b>Run configuration</b>";
  if (snapshot_ && !snapshot_->capture.path.empty()) {
    const auto& c = snapshot_->capture;
    h += " — " + QFileInfo(qs(c.path)).fileName().toHtmlEscaped();
    h += QString(" (%1 layers, %2 kv heads, D %3)")
             .arg(c.layers.size())
             .arg(c.num_kv_heads)
             .arg(c.head_dim);
    if (c.synthetic) h += " <span style='color:#c00000'><b>SYNTHETIC</b></span>";
  }
  header_->setText(h);
  status_->setText(edited_ ? "edited — Run to apply" : "");
  status_->setVisible(edited_);
  revert_->setEnabled(edited_);
  if (snapshot_ && !snapshot_->capture.layers.empty()) {
    std::vector<int> layers(snapshot_->capture.layers.begin(), snapshot_->capture.layers.end());
    boundary_->setPlaceholderText("none, e.g. 0,3 (capture layers " + qs(layer_list_text(layers)) +
                                  ")");
  }
}

void ConfigView::export_picture(const QString& path) const {
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (suffix != "png")
    throw InvalidArgument(path.toStdString() + ": the configuration view exports PNG only (got '." +
                          suffix.toStdString() + "')");
  write_png_atomic(path, const_cast<ConfigView*>(this)->grab().toImage());
}

}  // namespace kvwb::views
