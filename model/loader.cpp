#include "model/loader.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "base/errors.h"
#include "codec/format/half.h"
#include "io/atomic_file.h"
#include "io/limits.h"
#include "io/safetensors.h"

namespace kvwb::model {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

/// A named tensor whose f32 values are read on demand.
struct TensorRef {
  std::vector<uint64_t> shape;
  std::function<std::vector<float>()> load;
};
using TensorTable = std::map<std::string, TensorRef>;

json read_json(const std::string& path) {
  const auto b = io::read_file(path, io::kMaxJsonBytes);
  json j = json::parse(b.begin(), b.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw FormatError(path + ": not a JSON object");
  return j;
}

/// `name` (from a manifest or index) resolved inside the model folder `dir`: a relative path
/// that stays inside it (no "..", no absolute path, no symbolic link out of it); FormatError
/// naming `where` otherwise. Only files inside the model folder are ever read as weights.
std::string file_inside(const fs::path& dir, const std::string& name, const std::string& where) {
  const fs::path rel(name);
  bool up = false;
  for (const auto& part : rel) up = up || part == "..";
  if (name.empty() || rel.is_absolute() || up)
    throw FormatError(where + ": file name '" + name + "' is outside the model folder; expected a file inside " +
                      dir.string());
  std::error_code ec;
  const fs::path base = fs::weakly_canonical(dir, ec);
  const fs::path full = fs::weakly_canonical(dir / rel, ec);
  const auto mism = std::mismatch(base.begin(), base.end(), full.begin(), full.end());
  if (ec || mism.first != base.end())
    throw FormatError(where + ": file name '" + name + "' resolves outside the model folder (" + full.string() +
                      "); expected a file inside " + dir.string());
  return (dir / rel).string();
}

/// The configuration read from a file, validated (LlamaConfig::validate) as a format error of it.
void validate_config(const LlamaConfig& c, const std::string& src) {
  try {
    c.validate(src);
  } catch (const InvalidArgument& e) {
    throw FormatError(e.what());
  }
}

const json* find_key(const json& j, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    auto it = j.find(n);
    if (it != j.end() && !it->is_null()) return &*it;
  }
  return nullptr;
}

int get_int(const json& j, std::initializer_list<const char*> names, const std::string& src,
            std::optional<int> def = std::nullopt) {
  const json* v = find_key(j, names);
  if (!v) {
    if (def) return *def;
    throw FormatError(src + ": missing integer field \"" + std::string(*names.begin()) + "\"");
  }
  if (!v->is_number_integer() || v->get<long long>() < std::numeric_limits<int>::min() ||
      v->get<long long>() > std::numeric_limits<int>::max())
    throw FormatError(src + ": field \"" + std::string(*names.begin()) + "\" must be an integer in the int32 range, got " +
                      v->dump());
  return v->get<int>();
}

double get_num(const json& j, std::initializer_list<const char*> names, const std::string& src, double def) {
  const json* v = find_key(j, names);
  if (!v) return def;
  if (!v->is_number() || !std::isfinite(v->get<double>()))
    throw FormatError(src + ": field \"" + std::string(*names.begin()) + "\" must be a finite number");
  return v->get<double>();
}

bool get_bool(const json& j, std::initializer_list<const char*> names, const std::string& src, bool def) {
  const json* v = find_key(j, names);
  if (!v) return def;
  if (v->is_boolean()) return v->get<bool>();
  if (v->is_number_integer()) return v->get<int>() != 0;
  throw FormatError(src + ": field \"" + std::string(*names.begin()) + "\" must be a boolean");
}

/// Settings shared by the tiny1m-style config and HF config.json.
LlamaConfig parse_config(const json& j, const std::string& src) {
  LlamaConfig c;
  c.hidden_size = get_int(j, {"hidden_size", "dim"}, src);
  c.num_layers = get_int(j, {"num_layers", "num_hidden_layers", "n_layers"}, src);
  c.num_heads = get_int(j, {"num_heads", "num_attention_heads", "n_heads"}, src);
  c.num_kv_heads = get_int(j, {"num_kv_heads", "num_key_value_heads", "n_kv_heads"}, src, c.num_heads);
  c.head_dim = get_int(j, {"head_dim"}, src, c.num_heads > 0 ? c.hidden_size / c.num_heads : 0);
  c.intermediate_size = get_int(j, {"intermediate_size", "hidden_dim"}, src);
  c.vocab_size = get_int(j, {"vocab_size"}, src);
  c.max_position = get_int(j, {"max_position", "max_position_embeddings", "max_seq_len"}, src, 0);
  c.rms_norm_eps = get_num(j, {"rms_norm_eps", "norm_eps"}, src, 1e-6);
  c.rope_theta = get_num(j, {"rope_theta"}, src, 10000.0);
  c.tie_embeddings = get_bool(j, {"tie_embeddings", "tie_word_embeddings"}, src, false);
  c.bos_id = get_int(j, {"bos_token_id"}, src, 1);
  c.eos_id = get_int(j, {"eos_token_id"}, src, 2);
  c.qk_norm = get_bool(j, {"qk_norm"}, src, false);
  c.attention_bias = get_bool(j, {"attention_bias"}, src, false);
  if (const json* s = find_key(j, {"rope_style"})) {
    if (!s->is_string()) throw FormatError(src + ": field \"rope_style\" must be a string");
    try {
      c.rope_style = codec::parse_rope_style(s->get<std::string>());
    } catch (const InvalidArgument& e) {
      throw FormatError(src + ": field \"rope_style\": " + e.what());
    }
  }
  if (!get_bool(j, {"rope_enabled"}, src, true)) c.rope_style = codec::RopeStyle::kNone;
  c.rotary_dim = get_int(j, {"rotary_dim"}, src, 0);
  if (const json* f = find_key(j, {"partial_rotary_factor"})) {
    if (!f->is_number()) throw FormatError(src + ": field \"partial_rotary_factor\" must be a number");
    c.rotary_dim = static_cast<int>(f->get<double>() * c.head_dim);
  }
  if (const json* rs = find_key(j, {"rope_scaling"})) {
    std::string type;
    if (rs->is_object()) {
      if (auto it = rs->find("rope_type"); it != rs->end() && it->is_string()) type = it->get<std::string>();
      else if (auto it2 = rs->find("type"); it2 != rs->end() && it2->is_string()) type = it2->get<std::string>();
    }
    if (type != "default")
      throw Unsupported(src + ": rope_scaling " + rs->dump() + " is not supported (plain RoPE only)");
  }
  if (get_bool(j, {"use_sliding_window"}, src, false))
    throw Unsupported(src + ": sliding-window attention (use_sliding_window) is not supported");
  if (const json* a = find_key(j, {"hidden_act", "hidden_activation"})) {
    if (!a->is_string() || a->get<std::string>() != "silu")
      throw Unsupported(src + ": hidden_act " + a->dump() + " is not supported (SwiGLU with silu only)");
  }
  if (const json* n = find_key(j, {"model_name", "_name_or_path", "name"}))
    if (n->is_string()) c.name = n->get<std::string>();
  if (const json* a = find_key(j, {"model_type", "architecture"}))
    if (a->is_string()) c.architecture = a->get<std::string>();
  return c;
}

std::vector<float> convert(const uint8_t* p, size_t count, const std::string& dtype, const std::string& what) {
  std::vector<float> out(count);
  if (dtype == "float32" || dtype == "F32") {
    std::memcpy(out.data(), p, count * 4);
  } else if (dtype == "float16" || dtype == "F16") {
    for (size_t i = 0; i < count; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = codec::f16_bits_to_f32(h);
    }
  } else if (dtype == "bfloat16" || dtype == "BF16") {
    for (size_t i = 0; i < count; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = codec::bf16_bits_to_f32(h);
    }
  } else {
    throw Unsupported(what + ": dtype " + dtype + " is not supported (float32, float16, bfloat16)");
  }
  return out;
}

size_t dtype_bytes(const std::string& dtype) {
  if (dtype == "float32") return 4;
  if (dtype == "float16" || dtype == "bfloat16") return 2;
  return 0;
}

/// Fills the weights from a table of HF-named tensors.
LlamaWeights weights_from_table(LlamaConfig& c, const TensorTable& t, const std::string& src) {
  auto get = [&](const std::string& name, std::vector<uint64_t> shape) -> std::vector<float> {
    auto it = t.find(name);
    if (it == t.end()) throw FormatError(src + ": tensor " + name + " is missing");
    if (it->second.shape != shape) {
      std::string a, b;
      for (auto v : it->second.shape) a += (a.empty() ? "" : ", ") + std::to_string(v);
      for (auto v : shape) b += (b.empty() ? "" : ", ") + std::to_string(v);
      throw FormatError(src + ": tensor " + name + " has shape [" + a + "], expected [" + b + "]");
    }
    return it->second.load();
  };
  auto mat = [&](const std::string& name, int rows, int cols) {
    Matrix m;
    m.rows = rows;
    m.cols = cols;
    m.data = get(name, {static_cast<uint64_t>(rows), static_cast<uint64_t>(cols)});
    return m;
  };
  auto vec = [&](const std::string& name, int n) { return get(name, {static_cast<uint64_t>(n)}); };
  const int h = c.hidden_size, d = c.head_dim, qd = c.num_heads * d, kd = c.num_kv_heads * d, in = c.intermediate_size;
  if (t.count("model.layers.0.self_attn.q_proj.bias")) c.attention_bias = true;
  if (t.count("model.layers.0.self_attn.q_norm.weight")) c.qk_norm = true;
  LlamaWeights w;
  w.embed = mat("model.embed_tokens.weight", c.vocab_size, h);
  w.final_norm = vec("model.norm.weight", h);
  if (!c.tie_embeddings) {
    if (!t.count("lm_head.weight"))
      throw FormatError(src + ": tensor lm_head.weight is missing and the configuration does not tie embeddings");
    w.lm_head = mat("lm_head.weight", c.vocab_size, h);
  }
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights L;
    L.wq = mat(p + "self_attn.q_proj.weight", qd, h);
    L.wk = mat(p + "self_attn.k_proj.weight", kd, h);
    L.wv = mat(p + "self_attn.v_proj.weight", kd, h);
    L.wo = mat(p + "self_attn.o_proj.weight", h, qd);
    if (c.attention_bias) {
      L.bq = vec(p + "self_attn.q_proj.bias", qd);
      L.bk = vec(p + "self_attn.k_proj.bias", kd);
      L.bv = vec(p + "self_attn.v_proj.bias", kd);
    }
    if (c.qk_norm) {
      L.q_norm = vec(p + "self_attn.q_norm.weight", d);
      L.k_norm = vec(p + "self_attn.k_norm.weight", d);
    }
    L.w_gate = mat(p + "mlp.gate_proj.weight", in, h);
    L.w_up = mat(p + "mlp.up_proj.weight", in, h);
    L.w_down = mat(p + "mlp.down_proj.weight", h, in);
    L.attn_norm = vec(p + "input_layernorm.weight", h);
    L.ffn_norm = vec(p + "post_attention_layernorm.weight", h);
    w.layers.push_back(std::move(L));
  }
  return w;
}

std::optional<Tokenizer> find_tokenizer(const fs::path& dir, const std::string& override_path, int vocab) {
  auto load = [&](const fs::path& p) -> Tokenizer {
    if (p.extension() == ".json") return Tokenizer::from_tokens_json(p.string());
    return Tokenizer::from_llama2c(p.string(), vocab);
  };
  if (!override_path.empty()) return load(override_path);
  if (fs::exists(dir / "tokens.json")) return load(dir / "tokens.json");
  if (fs::exists(dir / "tokenizer.bin")) return load(dir / "tokenizer.bin");
  return std::nullopt;
}

std::string default_name(const fs::path& p) {
  fs::path q = p;
  if (q.filename().empty()) q = q.parent_path();
  return q.filename().string();
}

LoadedModel load_raw_folder(const fs::path& dir, const std::string& tok) {
  const std::string cfg_path = (dir / "config.json").string();
  const std::string man_path = (dir / "manifest.json").string();
  LlamaConfig c = parse_config(read_json(cfg_path), cfg_path);
  validate_config(c, cfg_path);
  const json man = read_json(man_path);
  if (!man.contains("tensors") || !man["tensors"].is_array())
    throw FormatError(man_path + ": expected an object with a \"tensors\" array");
  TensorTable table;
  std::string dtypes;
  for (size_t i = 0; i < man["tensors"].size(); ++i) {
    const json& e = man["tensors"][i];
    const std::string where = man_path + ": tensors[" + std::to_string(i) + "]";
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("filename") ||
        !e["filename"].is_string() || !e.contains("shape") || !e["shape"].is_array())
      throw FormatError(where + ": expected \"name\", \"filename\" and \"shape\"");
    TensorRef ref;
    uint64_t count = 1;
    for (const auto& s : e["shape"]) {
      if (!s.is_number_unsigned()) throw FormatError(where + ": shape entries must be non-negative integers");
      ref.shape.push_back(s.get<uint64_t>());
      if (!io::checked_mul(count, ref.shape.back(), count) || count > (uint64_t{1} << 40))
        throw FormatError(where + ": shape " + e["shape"].dump() + " is too large");
    }
    if (e.contains("dtype") && !e["dtype"].is_string()) throw FormatError(where + ": \"dtype\" must be a string");
    const std::string dtype = e.value("dtype", std::string("float32"));
    const size_t esz = dtype_bytes(dtype);
    if (esz == 0) throw Unsupported(where + ": dtype " + dtype + " is not supported (float32, float16, bfloat16)");
    if (dtypes.empty()) dtypes = dtype;
    if (e.contains("byte_offset") && !e["byte_offset"].is_number_unsigned())
      throw FormatError(where + ": \"byte_offset\" must be a non-negative integer, got " + e["byte_offset"].dump());
    const uint64_t offset = e.value("byte_offset", uint64_t{0});
    const std::string file = file_inside(dir, e["filename"].get<std::string>(), where);
    const std::string name = e["name"].get<std::string>();
    ref.load = [file, offset, count, esz, dtype, name]() {
      const auto bytes = io::read_file(file);  // a regular file only (never a FIFO or device)
      if (bytes.size() < offset || bytes.size() - offset < count * esz)
        throw FormatError(file + ": tensor " + name + " needs " + std::to_string(count * esz) + " bytes from offset " +
                          std::to_string(offset) + ", the file has " + std::to_string(bytes.size()));
      return convert(bytes.data() + offset, count, dtype, file);
    };
    table[name] = std::move(ref);
  }
  if (c.name.empty()) c.name = default_name(dir);
  if (c.architecture.empty() || c.architecture == "LlamaForCausalLM") c.architecture = "llama";
  c.source_dtype = dtypes.empty() ? "float32" : dtypes;
  LlamaWeights w = weights_from_table(c, table, dir.string());
  LoadedModel m{LlamaModel(c, std::move(w), dir.string()), find_tokenizer(dir, tok, c.vocab_size), "raw_folder"};
  return m;
}

LoadedModel load_hf(const fs::path& dir, const fs::path& single_file, const std::string& tok) {
  const std::string cfg_path = (dir / "config.json").string();
  const json cj = read_json(cfg_path);
  LlamaConfig c = parse_config(cj, cfg_path);
  validate_config(c, cfg_path);
  if (const json* a = find_key(cj, {"architectures"})) {
    if (a->is_array() && !a->empty() && (*a)[0].is_string()) {
      const std::string arch = (*a)[0].get<std::string>();
      static const char* kOk[] = {"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "MistralForCausalLM"};
      bool ok = false;
      for (const char* k : kOk) ok = ok || arch == k;
      if (!ok)
        throw Unsupported(cfg_path + ": architecture " + arch +
                          " is not supported (LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, MistralForCausalLM)");
    }
  }
  if (c.architecture == "qwen2") c.attention_bias = true;
  std::vector<std::string> files;
  if (!single_file.empty()) {
    files.push_back(single_file.string());
  } else if (fs::exists(dir / "model.safetensors")) {
    files.push_back((dir / "model.safetensors").string());
  } else if (fs::exists(dir / "model.safetensors.index.json")) {
    const std::string ip = (dir / "model.safetensors.index.json").string();
    const json idx = read_json(ip);
    if (!idx.contains("weight_map") || !idx["weight_map"].is_object())
      throw FormatError(ip + ": expected an object \"weight_map\"");
    std::map<std::string, bool> seen;
    for (const auto& [k, v] : idx["weight_map"].items()) {
      if (!v.is_string()) throw FormatError(ip + ": weight_map[" + k + "] must be a file name");
      if (!seen[v.get<std::string>()]) {
        seen[v.get<std::string>()] = true;
        files.push_back(file_inside(dir, v.get<std::string>(), ip + ": weight_map[" + k + "]"));
      }
    }
  } else {
    throw IoError(dir.string(), "no model.safetensors or model.safetensors.index.json in the folder");
  }
  // Tensors are converted to f32 one file at a time; the raw bytes of a shard are dropped after.
  std::map<std::string, std::pair<std::vector<uint64_t>, std::vector<float>>> loaded;
  std::string dtype;
  for (const auto& f : files) {
    io::SafeTensorsFile st = io::read_safetensors(f);
    for (auto& t : st.tensors) {
      if (dtype.empty()) dtype = t.dtype;
      loaded[t.name] = {t.shape, io::tensor_to_f32(t)};
      t.data.clear();
      t.data.shrink_to_fit();
    }
  }
  TensorTable table;
  for (auto& [name, sv] : loaded) {
    auto* p = &sv;
    table[name] = TensorRef{sv.first, [p]() { return std::move(p->second); }};
  }
  c.source_dtype = dtype == "BF16" ? "bfloat16" : dtype == "F16" ? "float16" : "float32";
  if (c.name.empty()) c.name = default_name(dir);
  LlamaWeights w = weights_from_table(c, table, dir.string());
  return LoadedModel{LlamaModel(c, std::move(w), dir.string()), find_tokenizer(dir, tok, c.vocab_size),
                     "hf_safetensors"};
}

LoadedModel load_llama2c(const fs::path& file, const std::string& tok) {
  const std::string src = file.string();
  const auto b = io::read_file(src);
  size_t off = 0;
  auto i32 = [&](const char* what) {
    if (b.size() - off < 4) throw FormatError(src + ": truncated header at " + what);
    int32_t v;
    std::memcpy(&v, b.data() + off, 4);
    off += 4;
    return v;
  };
  uint32_t magic = 0;
  if (b.size() >= 4) std::memcpy(&magic, b.data(), 4);
  int version = 0;
  bool shared = false;
  int32_t p[7];
  const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  if (magic == 0x616b3432u) {
    off = 4;
    version = i32("version");
    if (version != 1)
      throw Unsupported(src + ": llama2.c checkpoint version " + std::to_string(version) +
                        " is not supported (legacy and version 1 fp32 only)");
    for (int i = 0; i < 7; ++i) p[i] = i32(names[i]);
    if (b.size() < 256) throw FormatError(src + ": truncated 256-byte version-1 header");
    shared = b[off] != 0;
    off = 256;
  } else {
    for (int i = 0; i < 7; ++i) p[i] = i32(names[i]);
    shared = p[5] > 0;
    p[5] = p[5] < 0 ? -p[5] : p[5];
  }
  for (int i = 0; i < 7; ++i)
    if (p[i] <= 0) throw FormatError(src + ": header field " + names[i] + " = " + std::to_string(p[i]) + " must be > 0");
  LlamaConfig c;
  c.hidden_size = p[0];
  c.intermediate_size = p[1];
  c.num_layers = p[2];
  c.num_heads = p[3];
  c.num_kv_heads = p[4];
  c.vocab_size = p[5];
  c.max_position = p[6];
  if (c.hidden_size % c.num_heads != 0)
    throw FormatError(src + ": dim " + std::to_string(c.hidden_size) + " is not a multiple of n_heads");
  c.head_dim = c.hidden_size / c.num_heads;
  c.rms_norm_eps = 1e-5;
  c.rope_style = codec::RopeStyle::kInterleaved;
  c.rope_theta = 10000.0;
  c.tie_embeddings = shared;
  c.architecture = "llama2.c";
  c.name = default_name(file.stem());
  validate_config(c, src);
  const uint64_t L = static_cast<uint64_t>(c.num_layers), H = static_cast<uint64_t>(c.hidden_size);
  const uint64_t KD = static_cast<uint64_t>(c.num_kv_heads) * static_cast<uint64_t>(c.head_dim);
  const uint64_t I = static_cast<uint64_t>(c.intermediate_size), V = static_cast<uint64_t>(c.vocab_size);
  auto take = [&](uint64_t count, const std::string& what) {
    if ((b.size() - off) / 4 < count)
      throw FormatError(src + ": truncated while reading " + what + " (" + std::to_string(count) + " floats at byte " +
                        std::to_string(off) + ", file size " + std::to_string(b.size()) + ")");
    std::vector<float> v(count);
    std::memcpy(v.data(), b.data() + off, count * 4);
    off += count * 4;
    return v;
  };
  auto split = [&](const std::vector<float>& all, uint64_t l, int rows, int cols) {
    Matrix m;
    m.rows = rows;
    m.cols = cols;
    const uint64_t n = static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols);
    m.data.assign(all.begin() + static_cast<std::ptrdiff_t>(l * n), all.begin() + static_cast<std::ptrdiff_t>((l + 1) * n));
    return m;
  };
  auto vsplit = [&](const std::vector<float>& all, uint64_t l, uint64_t n) {
    return std::vector<float>(all.begin() + static_cast<std::ptrdiff_t>(l * n),
                              all.begin() + static_cast<std::ptrdiff_t>((l + 1) * n));
  };
  const int h = c.hidden_size, kd = static_cast<int>(KD), in = c.intermediate_size;
  LlamaWeights w;
  std::vector<float> emb, rms_att, rms_ffn, wq, wk, wv, wo, w1, w2, w3, rms_final;
  if (version == 0) {
    emb = take(V * H, "token_embedding_table");
    rms_att = take(L * H, "rms_att_weight");
    wq = take(L * H * H, "wq");
    wk = take(L * KD * H, "wk");
    wv = take(L * KD * H, "wv");
    wo = take(L * H * H, "wo");
    rms_ffn = take(L * H, "rms_ffn_weight");
    w1 = take(L * I * H, "w1");
    w2 = take(L * H * I, "w2");
    w3 = take(L * I * H, "w3");
    rms_final = take(H, "rms_final_weight");
    take(static_cast<uint64_t>(c.max_position) * static_cast<uint64_t>(c.head_dim), "freq_cis_real/imag");
  } else {
    rms_att = take(L * H, "attention_norm");
    rms_ffn = take(L * H, "ffn_norm");
    rms_final = take(H, "norm");
    emb = take(V * H, "tok_embeddings");
    wq = take(L * H * H, "wq");
    wk = take(L * KD * H, "wk");
    wv = take(L * KD * H, "wv");
    wo = take(L * H * H, "wo");
    w1 = take(L * I * H, "w1");
    w2 = take(L * H * I, "w2");
    w3 = take(L * I * H, "w3");
  }
  w.embed = split(emb, 0, c.vocab_size, h);
  w.final_norm = rms_final;
  if (!shared) w.lm_head = split(take(V * H, "wcls"), 0, c.vocab_size, h);
  if (off != b.size())
    throw FormatError(src + ": " + std::to_string(b.size() - off) + " unexpected bytes after the weights");
  for (uint64_t l = 0; l < L; ++l) {
    LayerWeights lw;
    lw.wq = split(wq, l, h, h);
    lw.wk = split(wk, l, kd, h);
    lw.wv = split(wv, l, kd, h);
    lw.wo = split(wo, l, h, h);
    lw.w_gate = split(w1, l, in, h);
    lw.w_down = split(w2, l, h, in);
    lw.w_up = split(w3, l, in, h);
    lw.attn_norm = vsplit(rms_att, l, H);
    lw.ffn_norm = vsplit(rms_ffn, l, H);
    w.layers.push_back(std::move(lw));
  }
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  return LoadedModel{LlamaModel(c, std::move(w), src), find_tokenizer(dir, tok, c.vocab_size), "llama2c"};
}

}  // namespace

LoadedModel load_model(const std::string& path, const std::string& tokenizer_path) {
  const fs::path p(path);
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    if (fs::exists(p / "manifest.json")) return load_raw_folder(p, tokenizer_path);
    if (fs::exists(p / "config.json")) return load_hf(p, {}, tokenizer_path);
    throw IoError(path, "model folder holds neither manifest.json + config.json nor config.json + model.safetensors");
  }
  if (!fs::exists(p, ec)) throw IoError(path, "no such model file or folder");
  if (p.extension() == ".safetensors") {
    const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    return load_hf(dir, p, tokenizer_path);
  }
  return load_llama2c(p, tokenizer_path);
}

std::vector<int32_t> read_token_ids(const std::string& path) {
  const auto b = io::read_file(path);
  std::vector<int32_t> out;
  size_t i = 0;
  while (i < b.size()) {
    const char ch = static_cast<char>(b[i]);
    if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t' || ch == ',') {
      ++i;
      continue;
    }
    if (ch < '0' || ch > '9')
      throw FormatError(path + ": byte " + std::to_string(i) + ": expected a decimal token id, found '" +
                        std::string(1, ch) + "'");
    int64_t v = 0;
    while (i < b.size() && b[i] >= '0' && b[i] <= '9') {
      v = v * 10 + (b[i] - '0');
      if (v > INT32_MAX) throw FormatError(path + ": byte " + std::to_string(i) + ": token id too large");
      ++i;
    }
    out.push_back(static_cast<int32_t>(v));
  }
  if (out.empty()) throw FormatError(path + ": no token ids");
  return out;
}

}  // namespace kvwb::model
