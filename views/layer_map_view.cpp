#include "views/layer_map_view.h"

#include <imgui.h>

#include <QFileInfo>
#include <QHBoxLayout>
#include <QImage>
#include <QKeyEvent>
#include <QVBoxLayout>
#include <QWheelEvent>
#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "base/errors.h"
#include "views/models/comparison_model.h"

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

/// Diverging blue–white–red (coolwarm end points) for Δ maps: 0 = blue, 0.5 = white, 1 = red.
ImVec4 diverging(double t) {
  t = std::clamp(t, 0.0, 1.0);
  const ImVec4 blue(0.23f, 0.30f, 0.75f, 1.0f), white(0.97f, 0.97f, 0.97f, 1.0f),
      red(0.71f, 0.02f, 0.15f, 1.0f);
  const ImVec4& a = t < 0.5 ? blue : white;
  const ImVec4& b = t < 0.5 ? white : red;
  const float f = static_cast<float>(t < 0.5 ? t * 2.0 : (t - 0.5) * 2.0);
  return ImVec4(a.x + f * (b.x - a.x), a.y + f * (b.y - a.y), a.z + f * (b.z - a.z), 1.0f);
}

/// Position of `v` on the colour scale, 0..1.
double scale_pos(const LayerMapModel& m, double v) {
  if (!m.has_values || m.max <= m.min) return 0.5;
  if (m.log_scale && v <= 0) return 0.0;
  if (m.log_scale)
    return (std::log10(v) - std::log10(m.min)) / (std::log10(m.max) - std::log10(m.min));
  return (v - m.min) / (m.max - m.min);
}

ImVec4 scale_colour(const LayerMapModel& m, double t) {
  return m.delta ? diverging(t) : viridis(t);
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
  if (m.delta) return delta_cell_text(m.metric, v);
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

LayerMapCanvas::LayerMapCanvas(QWidget* parent) : ImGuiHost(parent) { setMinimumSize(320, 280); }

void LayerMapCanvas::set_model(std::shared_ptr<const LayerMapModel> model) {
  auto same = [](const Selection& a, const Selection& b) {
    return a.layer == b.layer && a.kv_head == b.kv_head;
  };
  if (model && key_selection_) {
    // Selections asked for arrive in order: drop those the model has caught up with. A selection
    // that was never asked for (another view changed it) ends the keyboard's own.
    const auto hit = std::find_if(keyed_.begin(), keyed_.end(),
                                  [&](const Selection& k) { return same(k, model->selection); });
    if (hit != keyed_.end()) {
      keyed_.erase(keyed_.begin(), hit + 1);
      if (keyed_.empty()) key_selection_.reset();
    } else if (!same(model->selection, shown_selection_)) {
      keyed_.clear();
      key_selection_.reset();
    }
  }
  if (model) shown_selection_ = model->selection;
  model_ = std::move(model);
  request_frame();
}

void LayerMapCanvas::set_large_cells(bool large) {
  large_cells_ = large;
  request_frame();
}

void LayerMapCanvas::keyPressEvent(QKeyEvent* e) {
  const bool ctrl = e->modifiers().testFlag(Qt::ControlModifier);
  if (ctrl && (e->key() == Qt::Key_Plus || e->key() == Qt::Key_Equal || e->key() == Qt::Key_Minus ||
               e->key() == Qt::Key_0)) {
    if (on_zoom) on_zoom(e->key() == Qt::Key_Plus || e->key() == Qt::Key_Equal);
    e->accept();
    return;
  }
  if (!model_ || model_->rows.empty() || ctrl) {
    ImGuiHost::keyPressEvent(e);
    return;
  }
  const auto& rows = model_->rows;
  const int n = static_cast<int>(rows.size());
  const Selection sel = key_selection_.value_or(model_->selection);
  int ri = -1;
  for (int i = 0; i < n; ++i)
    if (rows[static_cast<size_t>(i)].layer == sel.layer) ri = i;
  int head = std::max(0, sel.kv_head);
  const int heads = std::max(1, model_->num_kv_heads);
  switch (e->key()) {
    case Qt::Key_Up:
      ri = ri < 0 ? 0 : std::max(0, ri - 1);
      break;
    case Qt::Key_Down:
      ri = ri < 0 ? 0 : std::min(n - 1, ri + 1);
      break;
    case Qt::Key_PageUp:
      ri = ri < 0 ? 0 : std::max(0, ri - 10);
      break;
    case Qt::Key_PageDown:
      ri = ri < 0 ? 0 : std::min(n - 1, ri + 10);
      break;
    case Qt::Key_Home:
      ri = 0;
      break;
    case Qt::Key_End:
      ri = n - 1;
      break;
    case Qt::Key_Left:
      ri = std::max(ri, 0);
      head = std::max(0, head - 1);
      break;
    case Qt::Key_Right:
      ri = std::max(ri, 0);
      head = std::min(heads - 1, head + 1);
      break;
    case Qt::Key_Space:
      if (ri >= 0 && on_boundary_toggle) on_boundary_toggle(rows[static_cast<size_t>(ri)].layer);
      e->accept();
      return;
    default:
      ImGuiHost::keyPressEvent(e);
      return;
  }
  const Selection next{rows[static_cast<size_t>(ri)].layer, head};
  key_selection_ = next;
  keyed_.push_back(next);
  if (on_select) on_select(next.layer, next.kv_head);
  request_frame();
  e->accept();
}

void LayerMapCanvas::wheelEvent(QWheelEvent* e) {
  if (e->modifiers().testFlag(Qt::ControlModifier) && e->angleDelta().y() != 0) {
    if (on_zoom) on_zoom(e->angleDelta().y() > 0);
    e->accept();
    return;
  }
  ImGuiHost::wheelEvent(e);
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
  if (sel) {
    key_selection_ = Selection{sel->first, sel->second};
    keyed_.push_back(*key_selection_);
  }
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
  auto wrapped = [](const ImVec4& colour, const std::string& text) {
    ImGui::PushTextWrapPos(0.0f);
    ImGui::TextColored(colour, "%s", text.c_str());
    ImGui::PopTextWrapPos();
  };
  // Text of " · "-separated parts, wrapped between the parts (a number is never split).
  auto flow = [&wrapped](const ImVec4& colour, const std::string& text, bool continue_line) {
    std::vector<std::string> parts;
    for (size_t at = 0;;) {
      const size_t next = text.find(" · ", at);
      parts.push_back(text.substr(at, next == std::string::npos ? std::string::npos : next - at));
      if (next == std::string::npos) break;
      at = next + std::string(" · ").size();
    }
    for (size_t i = 0; i < parts.size(); ++i) {
      const std::string piece = (i ? " · " : (continue_line ? "   " : "")) + parts[i];
      if (i || continue_line) {
        ImGui::SameLine(0, 0);
        if (ImGui::GetContentRegionAvail().x < ImGui::CalcTextSize(piece.c_str()).x) {
          ImGui::NewLine();
          wrapped(colour, parts[i]);
          continue;
        }
      }
      wrapped(colour, piece);
    }
  };
  if (!m.capture_label.empty()) flow(kTextGrey, m.capture_label, true);
  if (m.synthetic) text_after(kAccent, "   SYNTHETIC DATA (demo capture)");
  if (!m.unit_note.empty() && !m.rows.empty()) wrapped(kTextGrey, m.unit_note);
  if (m.has_run) {
    const ImVec4 run_colour = m.run_partial ? kAccent : kTextDark;
    flow(run_colour, (m.run_partial ? "Partial run: " : "Current run: ") + m.totals_line, false);
    if (m.run_partial) {
      wrapped(kAccent, "not the configuration's totals (cancelled) · F5 runs it");
    } else if (!m.run_is_current) {
      text_after(kAccent, m.run_in_flight ? "   rerunning…" : "   stale (F5 runs the edits)");
    }
    flow(m.run_is_current ? kTextDark : kTextGrey, "Quality: " + m.quality_line, false);
    if (!m.baseline_line.empty()) flow(kBlue, m.baseline_line, false);
  } else if (!m.rows.empty()) {
    ImGui::TextColored(kTextGrey, "Current run: none yet");
  }
  if (!m.hint.empty()) wrapped(m.rows.empty() ? kTextDark : kAccent, m.hint);
}

void LayerMapCanvas::draw_legend(const LayerMapModel& m) {
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
  const float bar_w = std::clamp(ImGui::GetContentRegionAvail().x * 0.35f, 100.0f, 360.0f);
  const ImVec2 p = ImGui::GetCursorScreenPos();
  const int segments = 48;
  for (int i = 0; i < segments; ++i) {
    const float x0 = p.x + bar_w * static_cast<float>(i) / segments;
    const float x1 = p.x + bar_w * static_cast<float>(i + 1) / segments;
    const ImU32 c0 = col(scale_colour(m, static_cast<double>(i) / segments));
    const ImU32 c1 = col(scale_colour(m, static_cast<double>(i + 1) / segments));
    dl->AddRectFilledMultiColor(ImVec2(x0, p.y + 1), ImVec2(x1 + 0.5f, p.y + line - 1), c0, c1, c1,
                                c0);
  }
  dl->AddRect(ImVec2(p.x, p.y + 1), ImVec2(p.x + bar_w, p.y + line - 1), col(kTextGrey));
  ImGui::Dummy(ImVec2(bar_w, line));
  ImGui::SameLine();
  ImGui::TextColored(kTextDark, "%s", hi.c_str());
  char scale[160];
  std::snprintf(scale, sizeof scale, "  %s%s%s%s", m.log_scale ? "log10" : "linear",
                m.per_layer ? " · one value per layer" : "", m.scale_note.empty() ? "" : " · ",
                m.scale_note.c_str());
  ImGui::SameLine();
  if (ImGui::GetContentRegionAvail().x < ImGui::CalcTextSize(scale).x) ImGui::NewLine();
  ImGui::TextColored(kTextGrey, "%s", scale);
  // Key of the marks drawn on the grid (wraps onto a second line in narrow docks).
  ImDrawList* kl = ImGui::GetWindowDrawList();
  bool first = true;
  auto entry = [&](const ImVec4* swatch_colour, float thickness, const char* letter,
                   const ImVec4& letter_colour, const char* text) {
    const float w = (swatch_colour ? line * 1.4f + 4 : ImGui::CalcTextSize(letter).x + 4) +
                    ImGui::CalcTextSize(text).x + 14;
    if (!first) {
      ImGui::SameLine();
      if (ImGui::GetContentRegionAvail().x < w) ImGui::NewLine();
    }
    first = false;
    if (swatch_colour) {
      const ImVec2 q = ImGui::GetCursorScreenPos();
      kl->AddRect(ImVec2(q.x + 1, q.y + 2), ImVec2(q.x + line * 1.4f, q.y + line - 2),
                  col(*swatch_colour), 2.0f, 0, thickness);
      ImGui::Dummy(ImVec2(line * 1.4f + 2, line));
    } else {
      ImGui::TextColored(letter_colour, "%s", letter);
    }
    ImGui::SameLine();
    ImGui::TextColored(kTextGrey, "%s", text);
  };
  entry(&kBoundaryOutline, 2.0f, nullptr, kTextGrey, "boundary (bf16)");
  entry(&kSelectionOutline, 3.0f, nullptr, kTextGrey, "selection");
  entry(nullptr, 0, "W", kBlue, "K whitened");
  entry(nullptr, 0, "S", kAccent, "Σ_q skip");
  entry(nullptr, 0, "", kTextGrey, "greyed: not in the run · hatched: n/a");
}

void LayerMapCanvas::draw_grid(const LayerMapModel& m) {
  ImGui::Spacing();
  const float line = ImGui::GetTextLineHeight();
  const int heads = std::max(1, m.num_kv_heads);
  const int rows = static_cast<int>(m.rows.size());
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const float header_h = line + 4.0f;
  // Row height: fitted to the canvas (down to 3 px) unless large cells were asked for.
  const float fit_h = (avail.y - header_h - 4.0f) / static_cast<float>(rows);
  const float cell_h = large_cells_ ? std::clamp(fit_h, line + 8.0f, 3.2f * line)
                                    : std::clamp(fit_h, 3.0f, 3.2f * line);
  const bool compact = cell_h < line + 4.0f;  // rows too low for "layer N" labels and flags
  const float toggle_w =
      compact ? std::max(cell_h, 9.0f) + 8.0f : ImGui::CalcTextSize("bf16").x + 14.0f;
  const float label_w = compact ? ImGui::CalcTextSize("000 WS").x + 8.0f
                                : ImGui::CalcTextSize("layer 000  W S sl").x + 12.0f;
  const float fit_w = (avail.x - toggle_w - label_w - 4.0f) / static_cast<float>(heads);
  const float cell_w =
      large_cells_ ? std::clamp(fit_w, 72.0f, 260.0f) : std::clamp(fit_w, 4.0f, 260.0f);
  const float gap = cell_h >= 12.0f && cell_w >= 12.0f ? 2.0f : (cell_h >= 5.0f ? 1.0f : 0.0f);
  // Compact rows: a layer number every `step` rows so the numbers never overlap.
  const int step = compact ? std::max(1, static_cast<int>(std::ceil(line / cell_h))) : 1;
  cell_size_ = QSizeF(cell_w, cell_h);
  cell_text_shown_ = false;

  ImGui::BeginChild("##grid", ImVec2(0, 0), false,
                    large_cells_
                        ? ImGuiWindowFlags_HorizontalScrollbar
                        : ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoScrollWithMouse);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 origin = ImGui::GetCursorScreenPos();
  // Column headers: "kv head h", "h", or every k-th number, whichever fits.
  dl->AddText(ImVec2(origin.x + 2, origin.y), col(kTextDark), compact ? "bf" : "bf16");
  if (!compact) dl->AddText(ImVec2(origin.x + toggle_w, origin.y), col(kTextDark), "layer");
  const float head_text_w = ImGui::CalcTextSize("kv head 00").x + 4.0f;
  const float num_w = ImGui::CalcTextSize("00").x + 4.0f;
  const int head_step =
      cell_w >= num_w ? 1 : std::max(1, static_cast<int>(std::ceil(num_w / cell_w)));
  for (int h = 0; h < heads; h += head_step) {
    char b[32];
    if (cell_w >= head_text_w)
      std::snprintf(b, sizeof b, "kv head %d", h);
    else
      std::snprintf(b, sizeof b, "%d", h);
    const float tw = ImGui::CalcTextSize(b).x;
    dl->AddText(ImVec2(origin.x + toggle_w + label_w + h * cell_w + (cell_w - tw) / 2, origin.y),
                col(kTextDark), b);
  }
  const bool selection_visible = m.selection.layer >= 0;
  const Selection focus = key_selection_.value_or(m.selection);
  for (int r = 0; r < rows; ++r) {
    const LayerMapRow& row = m.rows[static_cast<size_t>(r)];
    const float y = origin.y + header_h + r * cell_h;
    const bool grey = !row.in_run;
    const bool row_selected = selection_visible && row.layer == m.selection.layer;
    ImGui::PushID(row.layer);
    // Boundary toggle: shows config->boundary; a click asks the shell to toggle and rerun.
    const float box =
        std::clamp(std::min(cell_h - 2.0f, ImGui::GetFrameHeight() - 2.0f), 3.0f, 22.0f);
    const ImVec2 ta(origin.x + (toggle_w - box) / 2 - (compact ? 0.0f : 4.0f),
                    y + (cell_h - box) / 2);
    ImGui::SetCursorScreenPos(ImVec2(ta.x - 1, y));
    if (ImGui::InvisibleButton("##bf16", ImVec2(box + 2, std::max(cell_h, 1.0f))))
      pending_toggle_ = row.layer;
    const bool toggle_hovered = ImGui::IsItemHovered();
    toggle_rects_[row.layer] = to_qrect(ImVec2(ta.x - 1, y), ImVec2(ta.x + box + 1, y + cell_h));
    const ImVec2 tb(ta.x + box, ta.y + box);
    if (row.boundary) {
      dl->AddRectFilled(ta, tb, col(kBoundaryOutline), 2.0f);
      if (box >= 9.0f) {
        dl->AddLine(ImVec2(ta.x + box * 0.22f, ta.y + box * 0.52f),
                    ImVec2(ta.x + box * 0.42f, ta.y + box * 0.74f), col(ImVec4(1, 1, 1, 1)), 2.0f);
        dl->AddLine(ImVec2(ta.x + box * 0.42f, ta.y + box * 0.74f),
                    ImVec2(ta.x + box * 0.80f, ta.y + box * 0.26f), col(ImVec4(1, 1, 1, 1)), 2.0f);
      }
    } else {
      dl->AddRectFilled(ta, tb, col(ImVec4(1, 1, 1, 1)), 2.0f);
      dl->AddRect(ta, tb, col(toggle_hovered ? kTextDark : kTextGrey), 2.0f);
    }
    if (toggle_hovered) {
      ImGui::SetTooltip(
          "layer %d: %s\nclick (or select it and press Space) to %s the boundary "
          "set (both streams bf16) and rerun",
          row.layer, row.boundary ? "in the boundary set" : "compressed",
          row.boundary ? "remove it from" : "add it to");
    }
    // Layer label with flags: W = K whitened, S = Σ_q skip, sl = sliding.
    const ImVec4 label_colour = row_selected ? kSelectionOutline : grey ? kTextGrey : kTextDark;
    // Compact rows: every step-th number, the selected layer's always (its neighbours give way).
    int selected_index = -1;
    if (compact && selection_visible)
      for (int k = std::max(0, r - step + 1); k <= std::min(rows - 1, r + step - 1); ++k)
        if (m.rows[static_cast<size_t>(k)].layer == m.selection.layer) selected_index = k;
    const bool show_label = !compact || row_selected || (r % step == 0 && selected_index < 0);
    if (show_label) {
      const float ty = y + (cell_h - line) / 2;
      char label[32];
      std::snprintf(label, sizeof label, compact ? "%d" : "layer %d", row.layer);
      float lx = origin.x + toggle_w;
      dl->AddText(ImVec2(lx, ty), col(label_colour), label);
      lx += ImGui::CalcTextSize(compact ? "000 " : "layer 000 ").x;
      if (row.whitened) {
        dl->AddText(ImVec2(lx, ty), col(kBlue), "W");
        lx += ImGui::CalcTextSize(compact ? "W" : "W ").x;
      }
      if (row.q_skip) {
        dl->AddText(ImVec2(lx, ty), col(kAccent), "S");
        lx += ImGui::CalcTextSize("S ").x;
      }
      if (!compact && row.attention == "sliding") dl->AddText(ImVec2(lx, ty), col(kTextGrey), "sl");
    }
    // Cells.
    for (int h = 0; h < static_cast<int>(row.cells.size()); ++h) {
      const LayerMapCell& c = row.cells[static_cast<size_t>(h)];
      const ImVec2 a(origin.x + toggle_w + label_w + h * cell_w + gap, y + gap);
      const ImVec2 b(a.x + cell_w - 2 * gap, a.y + cell_h - 2 * gap);
      ImGui::SetCursorScreenPos(a);
      ImGui::PushID(h);
      if (ImGui::InvisibleButton("##cell",
                                 ImVec2(std::max(b.x - a.x, 1.0f), std::max(b.y - a.y, 1.0f)))) {
        pending_select_ = std::make_pair(row.layer, h);
      }
      const bool hovered = ImGui::IsItemHovered();
      ImGui::PopID();
      cell_rects_[{row.layer, h}] = to_qrect(a, b);
      const bool finite = std::isfinite(c.value);
      const float rounding = cell_h >= 10.0f ? 2.0f : 0.0f;
      ImVec4 fill =
          finite ? scale_colour(m, scale_pos(m, c.value)) : ImVec4(0.88f, 0.88f, 0.88f, 1.0f);
      if (grey && finite) fill = towards_grey(fill, 0.70f);
      dl->AddRectFilled(a, b, col(fill), rounding);
      if (!finite && b.y - a.y >= 6.0f) {
        // Hatch n/a cells so they never read as a low value.
        ImGui::PushClipRect(a, b, true);
        for (float x = a.x - (b.y - a.y); x < b.x; x += 8.0f) {
          dl->AddLine(ImVec2(x, b.y), ImVec2(x + (b.y - a.y), a.y),
                      col(ImVec4(0.78f, 0.78f, 0.78f, 1)));
        }
        ImGui::PopClipRect();
      }
      // Text only where it fits; the exact value is always in the tooltip.
      const ImVec2 ts = ImGui::CalcTextSize(c.text.c_str());
      if (ts.x <= b.x - a.x - 4.0f && ts.y <= b.y - a.y) {
        const ImVec4 text = !finite || grey           ? kTextGrey
                            : luminance(fill) > 0.45f ? kTextDark
                                                      : ImVec4(1, 1, 1, 1);
        dl->AddText(ImVec2(a.x + (b.x - a.x - ts.x) / 2, a.y + (b.y - a.y - ts.y) / 2), col(text),
                    c.text.c_str());
        cell_text_shown_ = true;
      }
      if (row.boundary) {
        dl->AddRect(a, b, col(kBoundaryOutline), rounding, 0, cell_h >= 8.0f ? 2.0f : 1.0f);
      }
      if (hovered) dl->AddRect(a, b, col(ImVec4(1, 1, 1, 1)), rounding, 0, 1.5f);
      const bool selected = row_selected && (m.selection.kv_head == h || m.selection.kv_head < 0);
      const bool keyed = hasFocus() && focus.layer == row.layer && focus.kv_head == h;
      if (selected || keyed) {
        dl->AddRect(ImVec2(a.x - 1, a.y - 1), ImVec2(b.x + 1, b.y + 1),
                    col(selected ? kSelectionOutline : kBlue), rounding, 0,
                    cell_h >= 8.0f ? 3.0f : 2.0f);
      }
      if (hovered) {
        ImGui::BeginTooltip();
        ImGui::Text("layer %d · kv head %d", row.layer, h);
        ImGui::Text("%s: %s", m.metric_label.c_str(), layer_map_exact(c.value).c_str());
        if (!c.detail.empty()) ImGui::TextColored(kTextGrey, "%s", c.detail.c_str());
        if (!finite && !c.why_na.empty()) ImGui::TextColored(kAccent, "n/a: %s", c.why_na.c_str());
        if (m.per_layer)
          ImGui::TextColored(kTextGrey, "per-layer value: every head of this row shows it");
        if (m.metric == LayerMapMetric::kOutlierRate && !m.delta) {
          ImGui::TextColored(kTextGrey, "Gaussian expectation at T = 2.5: 1.24 %%");
        }
        ImGui::Text("status: %s", row.status.empty() ? "compressed" : row.status.c_str());
        ImGui::TextColored(kTextGrey, "click: select it in every view");
        ImGui::TextColored(kTextGrey, "arrows move · Space toggles bf16");
        ImGui::EndTooltip();
      }
    }
    ImGui::PopID();
  }
  // Reserve the grid's extent so the child scrolls when it does not fit (large cells).
  ImGui::SetCursorScreenPos(origin);
  ImGui::Dummy(ImVec2(toggle_w + label_w + heads * cell_w, header_h + rows * cell_h));
  if (hasFocus()) {
    dl->AddRect(ImVec2(origin.x - 2, origin.y - 2),
                ImVec2(origin.x + toggle_w + label_w + heads * cell_w + 2,
                       origin.y + header_h + rows * cell_h + 2),
                col(kBlue), 0.0f, 0, 1.0f);
  }
  // Scrolling is needed when the grid is larger than the space it was given (this frame).
  grid_scrolls_ = header_h + rows * cell_h > avail.y + 0.5f ||
                  toggle_w + label_w + heads * cell_w > avail.x + 0.5f;
  ImGui::EndChild();
}

// ---------------------------------------------------------------------------------------------
// LayerMapView

LayerMapView::LayerMapView(QWidget* parent)
    : View(QStringLiteral("layer-map"), QStringLiteral("Layer map"), parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Metric:"), this));
  metric_box_ = new QComboBox(this);
  metric_box_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  metric_box_->setMinimumContentsLength(14);
  for (LayerMapMetric m : layer_map_metrics()) {
    metric_box_->addItem(QString::fromStdString(layer_map_metric_name(m)), static_cast<int>(m));
  }
  controls->addWidget(metric_box_);
  stream_label_ = new QLabel(tr("Tensor:"), this);
  controls->addWidget(stream_label_);
  stream_box_ = new QComboBox(this);
  stream_box_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  stream_box_->setMinimumContentsLength(8);
  controls->addWidget(stream_box_);
  delta_box_ = new QCheckBox(tr("Δ vs baseline"), this);
  delta_box_->setObjectName("layer_map.delta");
  delta_box_->setToolTip(
      tr("Show current run − pinned baseline for the run metrics (pin a baseline: Ctrl+B)"));
  // Second row: the comparison and zoom switches (keeps the dock narrow enough for 1200 px).
  auto* switches = new QHBoxLayout;
  switches->addWidget(delta_box_);
  zoom_box_ = new QCheckBox(tr("Large cells"), this);
  zoom_box_->setObjectName("layer_map.zoom");
  zoom_box_->setToolTip(
      tr("Large readable cells that scroll, instead of the whole model fitted "
         "in the view (Ctrl + wheel, Ctrl + / Ctrl −)"));
  switches->addWidget(zoom_box_);
  auto* help = new QLabel(tr("(?)"), this);
  help->setToolTip(
      tr("Hover a cell for its exact value · click or arrow keys to select · tick "
         "bf16 (or Space) to keep a layer uncompressed · Tab leaves the map"));
  help->setStyleSheet(QStringLiteral("color: #666;"));
  switches->addWidget(help);
  switches->addStretch(1);
  controls->addStretch(1);
  layout->addLayout(controls);
  layout->addLayout(switches);
  canvas_ = new LayerMapCanvas(this);
  layout->addWidget(canvas_, 1);
  canvas_->on_select = [this](int layer, int head) { emit select_requested(layer, head); };
  canvas_->on_boundary_toggle = [this](int layer) { emit boundary_toggle_requested(layer); };
  canvas_->on_zoom = [this](bool large) { zoom_box_->setChecked(large); };
  connect(zoom_box_, &QCheckBox::toggled, this, [this](bool on) { canvas_->set_large_cells(on); });
  connect(delta_box_, &QCheckBox::toggled, this, [this](bool on) {
    delta_ = on;
    rebuild();
  });

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

void LayerMapView::set_delta(bool on) { delta_box_->setChecked(on); }

void LayerMapView::rebuild() {
  const Snapshot& s = *snapshot_;
  const bool has_baseline = s.baseline && s.baseline->run;
  delta_box_->setEnabled(has_baseline);
  if (delta_ && has_baseline) {
    const LayerMapModel cur = build_layer_map(s, metric_, stream_);
    const LayerMapModel base =
        build_layer_map(*snapshot_of_entry(s, *s.baseline), metric_, stream_);
    model_ = std::make_shared<const LayerMapModel>(
        diff_layer_map(cur, base, "run #" + std::to_string(s.baseline->id)));
  } else {
    model_ = std::make_shared<const LayerMapModel>(build_layer_map(s, metric_, stream_));
  }
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
  write_png_atomic(path, image);
}

void LayerMapView::export_csv(const QString& path) const {
  if (!model_ || model_->rows.empty()) {
    throw InvalidArgument("layer-map view has no grid to export as CSV (" + path.toStdString() +
                          ")");
  }
  write_bytes_atomic(path, QByteArray::fromStdString(layer_map_csv(*model_)));
}

}  // namespace kvwb::views
