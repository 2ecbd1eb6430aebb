#include "views/layer_map_view.h"

#include <imgui.h>

#include <QBuffer>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QImage>
#include <QVBoxLayout>
#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "base/errors.h"

namespace kvwb::views {

namespace {

// Viridis (matplotlib), 9 stops: perceptually uniform, readable in grey, colour-blind safe.
constexpr std::array<std::array<float, 3>, 9> kViridis = {{{0.267f, 0.005f, 0.329f},
                                                           {0.279f, 0.175f, 0.483f},
                                                           {0.230f, 0.322f, 0.546f},
                                                           {0.173f, 0.449f, 0.558f},
                                                           {0.128f, 0.567f, 0.551f},
                                                           {0.153f, 0.683f, 0.502f},
                                                           {0.361f, 0.785f, 0.388f},
                                                           {0.668f, 0.865f, 0.183f},
                                                           {0.993f, 0.906f, 0.144f}}};

ImVec4 viridis(double t) {
  t = std::clamp(t, 0.0, 1.0) * (kViridis.size() - 1);
  const size_t i = std::min(static_cast<size_t>(t), kViridis.size() - 2);
  const float f = static_cast<float>(t - static_cast<double>(i));
  const auto& a = kViridis[i];
  const auto& b = kViridis[i + 1];
  return ImVec4(a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), a[2] + f * (b[2] - a[2]), 1.0f);
}

/// Position of `v` on the colour scale, 0..1.
double scale_pos(const LayerMapModel& m, double v) {
  if (!m.has_values || m.max <= m.min) return 0.5;
  if (m.log_scale && v <= 0) return 0.0;
  if (m.log_scale)
    return (std::log10(v) - std::log10(m.min)) / (std::log10(m.max) - std::log10(m.min));
  return (v - m.min) / (m.max - m.min);
}

ImVec4 towards_grey(ImVec4 c, float amount) {
  const float g = 0.80f;
  return ImVec4(c.x + amount * (g - c.x), c.y + amount * (g - c.y), c.z + amount * (g - c.z), 1.0f);
}

float luminance(const ImVec4& c) { return 0.2126f * c.x + 0.7152f * c.y + 0.0722f * c.z; }

ImU32 col(const ImVec4& c) { return ImGui::ColorConvertFloat4ToU32(c); }

const ImVec4 kTextDark(0.10f, 0.10f, 0.12f, 1.0f);
const ImVec4 kTextGrey(0.45f, 0.45f, 0.48f, 1.0f);
const ImVec4 kAccent(0.80f, 0.30f, 0.00f, 1.0f);
const ImVec4 kBlue(0.10f, 0.35f, 0.75f, 1.0f);
const ImVec4 kBoundaryOutline(0.95f, 0.55f, 0.10f, 1.0f);
const ImVec4 kSelectionOutline(0.85f, 0.0f, 0.0f, 1.0f);

QRect to_qrect(ImVec2 a, ImVec2 b) {
  return QRect(
      QPoint(static_cast<int>(std::lround(a.x)), static_cast<int>(std::lround(a.y))),
      QPoint(static_cast<int>(std::lround(b.x)) - 1, static_cast<int>(std::lround(b.y)) - 1));
}

std::string legend_number(const LayerMapModel& m, double v) {
  char b[64];
  switch (m.metric) {
    case LayerMapMetric::kOutlierRate:
      std::snprintf(b, sizeof b, "%.3g %%", 100.0 * v);
      break;
    case LayerMapMetric::kDEff:
      std::snprintf(b, sizeof b, "%.0f", v);
      break;
    case LayerMapMetric::kBytes:
      if (v >= 1024.0 * 1024.0) {
        std::snprintf(b, sizeof b, "%.2f MiB", v / (1024.0 * 1024.0));
      } else {
        std::snprintf(b, sizeof b, "%.1f KiB", v / 1024.0);
      }
      break;
    case LayerMapMetric::kKurtosis:
      std::snprintf(b, sizeof b, "%.3f", v);
      break;
    case LayerMapMetric::kRelMse:
    case LayerMapMetric::kAttnKl:
      std::snprintf(b, sizeof b, "%.2e", v);
      break;
    default:
      std::snprintf(b, sizeof b, "%.3g", v);
      break;
  }
  return b;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// LayerMapCanvas

LayerMapCanvas::LayerMapCanvas(QWidget* parent) : ImGuiHost(parent) { setMinimumSize(480, 320); }

void LayerMapCanvas::set_model(std::shared_ptr<const LayerMapModel> model) {
  model_ = std::move(model);
  request_frame();
}

QRect LayerMapCanvas::cell_rect(int layer, int kv_head) const {
  auto it = cell_rects_.find({layer, kv_head});
  return it == cell_rects_.end() ? QRect() : it->second;
}

QRect LayerMapCanvas::boundary_toggle_rect(int layer) const {
  auto it = toggle_rects_.find(layer);
  return it == toggle_rects_.end() ? QRect() : it->second;
}

void LayerMapCanvas::after_frame() {
  // Emitted after the frame: a handler may publish a new snapshot (replacing the model).
  auto sel = std::exchange(pending_select_, std::nullopt);
  auto tog = std::exchange(pending_toggle_, std::nullopt);
  if (sel && on_select) on_select(sel->first, sel->second);
  if (tog && on_boundary_toggle) on_boundary_toggle(*tog);
}

void LayerMapCanvas::draw_frame() {
  const ImGuiIO& io = ImGui::GetIO();
  ImGui::SetNextWindowPos(ImVec2(0, 0));
  ImGui::SetNextWindowSize(io.DisplaySize);
  const ImGuiWindowFlags flags = ImGuiWindowFlags_NoTitleBar | ImGuiWindowFlags_NoResize |
                                 ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoCollapse |
                                 ImGuiWindowFlags_NoSavedSettings |
                                 ImGuiWindowFlags_NoBringToFrontOnFocus;
  ImGui::Begin("##layer_map", nullptr, flags);
  cell_rects_.clear();
  toggle_rects_.clear();
  if (!model_) {
    ImGui::TextColored(kTextGrey, "No snapshot yet.");
  } else {
    const LayerMapModel& m = *model_;
    draw_header(m);
    if (!m.rows.empty()) {
      draw_legend(m);
      draw_grid(m);
    }
  }
  ImGui::End();
}

void LayerMapCanvas::draw_header(const LayerMapModel& m) {
  if (heading_font()) ImGui::PushFont(heading_font());
  ImGui::TextColored(kTextDark, "Layer map: %s", m.metric_label.c_str());
  if (heading_font()) ImGui::PopFont();
  // Same line as the heading when it fits, else its own line (narrow docks).
  auto text_after = [](const ImVec4& colour, const std::string& text) {
    ImGui::SameLine();
    if (ImGui::GetContentRegionAvail().x < ImGui::CalcTextSize(text.c_str()).x) ImGui::NewLine();
    ImGui::TextColored(colour, "%s", text.c_str());
  };
  if (!m.capture_label.empty()) text_after(kTextGrey, "   " + m.capture_label);
  if (m.synthetic) text_after(kAccent, "   SYNTHETIC DATA (demo capture)");
  if (!m.unit_note.empty() && !m.rows.empty()) {
    ImGui::PushTextWrapPos(0.0f);
    ImGui::TextColored(kTextGrey, "%s", m.unit_note.c_str());
    ImGui::PopTextWrapPos();
  }
  if (m.has_run) {
    ImGui::TextColored(kTextDark, "Current run: %s", m.totals_line.c_str());
    if (!m.run_is_current) {
      ImGui::SameLine();
      ImGui::TextColored(kAccent, "   rerunning…");
    }
    ImGui::PushTextWrapPos(0.0f);
    ImGui::TextColored(m.run_is_current ? kTextDark : kTextGrey, "Quality: %s",
                       m.quality_line.c_str());
    ImGui::PopTextWrapPos();
  } else if (!m.rows.empty()) {
    ImGui::TextColored(kTextGrey, "Current run: none yet");
  }
  if (!m.hint.empty()) {
    ImGui::PushTextWrapPos(0.0f);
    ImGui::TextColored(m.rows.empty() ? kTextDark : kAccent, "%s", m.hint.c_str());
    ImGui::PopTextWrapPos();
  }
}

void LayerMapCanvas::draw_legend(const LayerMapModel& m) {
  ImGui::Spacing();
  if (!m.has_values) {
    ImGui::TextColored(kTextGrey, "Colour scale: no values (every cell n/a)");
    return;
  }
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const float line = ImGui::GetTextLineHeight();
  const std::string lo = legend_number(m, m.min);
  const std::string hi = legend_number(m, m.max);
  ImGui::TextColored(kTextDark, "%s", lo.c_str());
  ImGui::SameLine();
  const float bar_w = std::clamp(ImGui::GetContentRegionAvail().x * 0.45f, 160.0f, 420.0f);
  const ImVec2 p = ImGui::GetCursorScreenPos();
  const int segments = 48;
  for (int i = 0; i < segments; ++i) {
    const float x0 = p.x + bar_w * static_cast<float>(i) / segments;
    const float x1 = p.x + bar_w * static_cast<float>(i + 1) / segments;
    const ImU32 c0 = col(viridis(static_cast<double>(i) / segments));
    const ImU32 c1 = col(viridis(static_cast<double>(i + 1) / segments));
    dl->AddRectFilledMultiColor(ImVec2(x0, p.y + 1), ImVec2(x1 + 0.5f, p.y + line - 1), c0, c1, c1,
                                c0);
  }
  dl->AddRect(ImVec2(p.x, p.y + 1), ImVec2(p.x + bar_w, p.y + line - 1), col(kTextGrey));
  ImGui::Dummy(ImVec2(bar_w, line));
  ImGui::SameLine();
  ImGui::TextColored(kTextDark, "%s", hi.c_str());
  ImGui::TextColored(kTextGrey, "colour: %s scale%s%s%s", m.log_scale ? "log10" : "linear",
                     m.per_layer ? " · one value per layer" : "", m.scale_note.empty() ? "" : " · ",
                     m.scale_note.c_str());
  // Key of the marks drawn on the grid.
  ImDrawList* kl = ImGui::GetWindowDrawList();
  auto swatch = [&](const ImVec4& c, float thickness) {
    const ImVec2 q = ImGui::GetCursorScreenPos();
    kl->AddRect(ImVec2(q.x + 1, q.y + 2), ImVec2(q.x + line * 1.4f, q.y + line - 2), col(c), 2.0f,
                0, thickness);
    ImGui::Dummy(ImVec2(line * 1.4f + 2, line));
    ImGui::SameLine();
  };
  swatch(kBoundaryOutline, 2.0f);
  ImGui::TextColored(kTextGrey, "boundary layer (bf16)   ");
  ImGui::SameLine();
  swatch(kSelectionOutline, 3.0f);
  ImGui::TextColored(kTextGrey, "selection   ");
  ImGui::SameLine();
  ImGui::TextColored(kBlue, "W");
  ImGui::SameLine();
  ImGui::TextColored(kTextGrey, "K whitened   ");
  ImGui::SameLine();
  ImGui::TextColored(kAccent, "S");
  ImGui::SameLine();
  ImGui::TextColored(kTextGrey, "Σ_q skip");
  ImGui::TextColored(kTextGrey, "greyed: not in the run   hatched: n/a");
}

void LayerMapCanvas::draw_grid(const LayerMapModel& m) {
  ImGui::Spacing();
  const float line = ImGui::GetTextLineHeight();
  const float toggle_w = std::max(ImGui::CalcTextSize("bf16").x, ImGui::GetFrameHeight()) + 12.0f;
  const float label_w = ImGui::CalcTextSize("layer 000  W S sl").x + 12.0f;
  const int heads = std::max(1, m.num_kv_heads);
  const int rows = static_cast<int>(m.rows.size());
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const float cell_w = std::clamp((avail.x - toggle_w - label_w - 4.0f) / heads, 72.0f, 260.0f);
  const float header_h = line + 6.0f;
  const float cell_h = std::clamp((avail.y - header_h - 4.0f) / rows, line + 8.0f, 3.2f * line);
  const float gap = 2.0f;

  ImGui::BeginChild("##grid", ImVec2(0, 0), false, ImGuiWindowFlags_HorizontalScrollbar);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 origin = ImGui::GetCursorScreenPos();
  // Column headers.
  dl->AddText(ImVec2(origin.x + 2, origin.y), col(kTextDark), "bf16");
  dl->AddText(ImVec2(origin.x + toggle_w, origin.y), col(kTextDark), "layer");
  for (int h = 0; h < heads; ++h) {
    char b[32];
    std::snprintf(b, sizeof b, "kv head %d", h);
    const float tw = ImGui::CalcTextSize(b).x;
    dl->AddText(ImVec2(origin.x + toggle_w + label_w + h * cell_w + (cell_w - tw) / 2, origin.y),
                col(kTextDark), b);
  }
  const bool selection_visible = m.selection.layer >= 0;
  for (int r = 0; r < rows; ++r) {
    const LayerMapRow& row = m.rows[static_cast<size_t>(r)];
    const float y = origin.y + header_h + r * cell_h;
    const bool grey = !row.in_run;
    ImGui::PushID(row.layer);
    // Boundary toggle: shows config->boundary; a click asks the shell to toggle and rerun.
    const float fh = ImGui::GetFrameHeight();
    ImGui::SetCursorScreenPos(ImVec2(origin.x + (toggle_w - fh) / 2 - 4, y + (cell_h - fh) / 2));
    bool checked = row.boundary;
    if (ImGui::Checkbox("##bf16", &checked)) pending_toggle_ = row.layer;
    toggle_rects_[row.layer] = to_qrect(ImGui::GetItemRectMin(), ImGui::GetItemRectMax());
    if (ImGui::IsItemHovered()) {
      ImGui::SetTooltip("layer %d: %s\nclick to %s the boundary set (both streams bf16) and rerun",
                        row.layer, row.boundary ? "in the boundary set" : "compressed",
                        row.boundary ? "remove it from" : "add it to");
    }
    // Layer label with flags: W = K whitened, S = Σ_q skip, sl = sliding.
    const float ty = y + (cell_h - line) / 2;
    char label[32];
    std::snprintf(label, sizeof label, "layer %d", row.layer);
    float lx = origin.x + toggle_w;
    dl->AddText(ImVec2(lx, ty), col(grey ? kTextGrey : kTextDark), label);
    lx += ImGui::CalcTextSize("layer 000 ").x;
    if (row.whitened) {
      dl->AddText(ImVec2(lx, ty), col(kBlue), "W");
      lx += ImGui::CalcTextSize("W ").x;
    }
    if (row.q_skip) {
      dl->AddText(ImVec2(lx, ty), col(kAccent), "S");
      lx += ImGui::CalcTextSize("S ").x;
    }
    if (row.attention == "sliding") dl->AddText(ImVec2(lx, ty), col(kTextGrey), "sl");
    // Cells.
    for (int h = 0; h < static_cast<int>(row.cells.size()); ++h) {
      const LayerMapCell& c = row.cells[static_cast<size_t>(h)];
      const ImVec2 a(origin.x + toggle_w + label_w + h * cell_w + gap, y + gap);
      const ImVec2 b(a.x + cell_w - 2 * gap, a.y + cell_h - 2 * gap);
      ImGui::SetCursorScreenPos(a);
      ImGui::PushID(h);
      if (ImGui::InvisibleButton("##cell", ImVec2(b.x - a.x, b.y - a.y))) {
        pending_select_ = std::make_pair(row.layer, h);
      }
      const bool hovered = ImGui::IsItemHovered();
      ImGui::PopID();
      cell_rects_[{row.layer, h}] = to_qrect(a, b);
      const bool finite = std::isfinite(c.value);
      ImVec4 fill = finite ? viridis(scale_pos(m, c.value)) : ImVec4(0.88f, 0.88f, 0.88f, 1.0f);
      if (grey && finite) fill = towards_grey(fill, 0.70f);
      dl->AddRectFilled(a, b, col(fill), 2.0f);
      if (!finite) {
        // Hatch n/a cells so they never read as a low value.
        ImGui::PushClipRect(a, b, true);
        for (float x = a.x - (b.y - a.y); x < b.x; x += 8.0f) {
          dl->AddLine(ImVec2(x, b.y), ImVec2(x + (b.y - a.y), a.y),
                      col(ImVec4(0.78f, 0.78f, 0.78f, 1)));
        }
        ImGui::PopClipRect();
      }
      const ImVec4 text = !finite || grey           ? kTextGrey
                          : luminance(fill) > 0.45f ? kTextDark
                                                    : ImVec4(1, 1, 1, 1);
      const ImVec2 ts = ImGui::CalcTextSize(c.text.c_str());
      dl->AddText(ImVec2(a.x + (b.x - a.x - ts.x) / 2, a.y + (b.y - a.y - ts.y) / 2), col(text),
                  c.text.c_str());
      if (row.boundary) {
        dl->AddRect(a, b, col(kBoundaryOutline), 2.0f, 0, 2.0f);
      }
      if (hovered) dl->AddRect(a, b, col(ImVec4(1, 1, 1, 1)), 2.0f, 0, 1.5f);
      const bool selected = selection_visible && m.selection.layer == row.layer &&
                            (m.selection.kv_head == h || m.selection.kv_head < 0);
      if (selected) {
        dl->AddRect(ImVec2(a.x - 1, a.y - 1), ImVec2(b.x + 1, b.y + 1), col(kSelectionOutline),
                    2.0f, 0, 3.0f);
      }
      if (hovered) {
        ImGui::BeginTooltip();
        ImGui::Text("layer %d · kv head %d", row.layer, h);
        ImGui::Text("%s: %s", m.metric_label.c_str(), layer_map_exact(c.value).c_str());
        if (!finite && !c.why_na.empty()) ImGui::TextColored(kAccent, "n/a: %s", c.why_na.c_str());
        if (m.per_layer)
          ImGui::TextColored(kTextGrey, "per-layer value: every head of this row shows it");
        if (m.metric == LayerMapMetric::kOutlierRate) {
          ImGui::TextColored(kTextGrey, "Gaussian expectation at T = 2.5: 1.24 %%");
        }
        ImGui::Text("status: %s", row.status.empty() ? "compressed" : row.status.c_str());
        ImGui::TextColored(kTextGrey, "click to select this (layer, head) in every view");
        ImGui::EndTooltip();
      }
    }
    ImGui::PopID();
  }
  // Reserve the grid's extent so the child scrolls when it does not fit.
  ImGui::SetCursorScreenPos(origin);
  ImGui::Dummy(ImVec2(toggle_w + label_w + heads * cell_w, header_h + rows * cell_h));
  ImGui::EndChild();
}

// ---------------------------------------------------------------------------------------------
// LayerMapView

LayerMapView::LayerMapView(QWidget* parent) : View(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Metric:"), this));
  metric_box_ = new QComboBox(this);
  for (LayerMapMetric m : layer_map_metrics()) {
    metric_box_->addItem(QString::fromStdString(layer_map_metric_name(m)), static_cast<int>(m));
  }
  controls->addWidget(metric_box_);
  stream_label_ = new QLabel(tr("Tensor:"), this);
  controls->addWidget(stream_label_);
  stream_box_ = new QComboBox(this);
  controls->addWidget(stream_box_);
  auto* help = new QLabel(tr("Hover a cell for its exact value · click to select · tick bf16 to "
                             "keep a layer uncompressed"),
                          this);
  help->setStyleSheet(QStringLiteral("color: #666;"));
  help->setWordWrap(true);
  controls->addSpacing(12);
  controls->addWidget(help, 1);
  layout->addLayout(controls);
  canvas_ = new LayerMapCanvas(this);
  layout->addWidget(canvas_, 1);
  canvas_->on_select = [this](int layer, int head) { emit select_requested(layer, head); };
  canvas_->on_boundary_toggle = [this](int layer) { emit boundary_toggle_requested(layer); };

  connect(metric_box_, &QComboBox::currentIndexChanged, this, [this](int) {
    if (updating_boxes_) return;
    metric_ = static_cast<LayerMapMetric>(metric_box_->currentData().toInt());
    stream_ = LayerMapStream::kNone;
    fill_stream_box();
    rebuild();
  });
  connect(stream_box_, &QComboBox::currentIndexChanged, this, [this](int) {
    if (updating_boxes_) return;
    stream_ = static_cast<LayerMapStream>(stream_box_->currentData().toInt());
    rebuild();
  });
  fill_stream_box();
  snapshot_ = std::make_shared<const Snapshot>();
  rebuild();
}

void LayerMapView::fill_stream_box() {
  updating_boxes_ = true;
  stream_box_->clear();
  const auto streams = layer_map_streams(metric_);
  for (LayerMapStream s : streams) {
    if (s == LayerMapStream::kNone) continue;
    stream_box_->addItem(QString::fromStdString(layer_map_stream_name(metric_, s)),
                         static_cast<int>(s));
  }
  const int idx = stream_box_->findData(static_cast<int>(stream_));
  stream_box_->setCurrentIndex(idx >= 0 ? idx : 0);
  const bool has_choice = stream_box_->count() > 0;
  stream_box_->setVisible(has_choice);
  stream_label_->setVisible(has_choice);
  updating_boxes_ = false;
}

void LayerMapView::set_metric(LayerMapMetric metric, LayerMapStream stream) {
  metric_ = metric;
  stream_ = stream;
  updating_boxes_ = true;
  metric_box_->setCurrentIndex(metric_box_->findData(static_cast<int>(metric)));
  updating_boxes_ = false;
  fill_stream_box();
  rebuild();
}

void LayerMapView::set_snapshot(SnapshotPtr snapshot) {
  snapshot_ = snapshot ? std::move(snapshot) : std::make_shared<const Snapshot>();
  rebuild();
}

void LayerMapView::rebuild() {
  model_ = std::make_shared<const LayerMapModel>(build_layer_map(*snapshot_, metric_, stream_));
  canvas_->set_model(model_);
}

bool LayerMapView::has_content() const {
  return model_ && !model_->rows.empty() && model_->has_values;
}

void LayerMapView::export_picture(const QString& path) const {
  if (QFileInfo(path).suffix().compare(QStringLiteral("png"), Qt::CaseInsensitive) != 0) {
    throw InvalidArgument("layer-map view exports PNG only (asked for " + path.toStdString() + ")");
  }
  // A view that was never shown (screenshot mode) has not been laid out: lay it out at its size.
  if (!isVisible() && layout() != nullptr) layout()->setGeometry(rect());
  const QImage image = canvas_->grabFramebuffer();
  if (image.isNull()) {
    throw IoError(path.toStdString(),
                  "the layer-map canvas could not be rendered (no OpenGL context)");
  }
  QByteArray bytes;
  QBuffer buffer(&bytes);
  buffer.open(QIODevice::WriteOnly);
  if (!image.save(&buffer, "PNG")) throw IoError(path.toStdString(), "PNG encoding failed");
  write_bytes_atomic(path, bytes);
}

void LayerMapView::export_csv(const QString& path) const {
  if (!model_ || model_->rows.empty()) {
    throw InvalidArgument("layer-map view has no grid to export as CSV (" + path.toStdString() +
                          ")");
  }
  write_bytes_atomic(path, QByteArray::fromStdString(layer_map_csv(*model_)));
}

}  // namespace kvwb::views
