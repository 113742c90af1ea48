// The run configuration: one struct of defaults, a YAML file, dotted key=value overrides.
// Unknown keys and wrong types are errors that name the key and suggest the closest one.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lathe {

struct ModelSection {
  std::string path;  // HF model folder
  // A json file {"tokens": [...]} of special tokens to add (as the Ray fine-tuning
  // template does): new ids are appended, embedding and lm_head grow (new rows = mean of
  // the existing rows), and final/ carries the extended tokenizer.
  std::string special_tokens;
};

struct DataSection {
  std::string train;               // jsonl file
  std::string eval;                // optional jsonl file
  std::string format = "input_ids";  // see data_formats() in data/formats.h
  int64_t seq_len = 512;
  bool shuffle = true;
  bool packing = false;          // concatenate documents into seq_len rows, attention per document
  std::string padding = "longest";  // longest (in the micro-batch) | max_length (always seq_len)
  bool train_on_prompt = false;
  std::string on_bad_row = "error";  // error | skip
  std::string too_long = "truncate";  // truncate | drop
  std::string prompt_template, response_field, response_template;  // format "template"
  // Template field name -> the row's column: {"text": "input"} reads the Ray template's
  // "input" column where data.format=text expects "text".
  std::map<std::string, std::string> field_map;
  std::string cache_dir;  // tokenized-data cache; "" = ~/.cache/lathe/datasets
  double test_split = 0;  // without data.eval: this share of data.train, drawn with train.seed
};

struct TrainSection {
  std::string device = "auto";     // cpu | cuda | auto (cuda when built with it and a GPU is seen)
  std::string precision = "bf16";  // fp32 | bf16
  int64_t batch_size = 4;          // micro-batch per process
  int64_t grad_accum = 1;
  int64_t max_steps = 0;  // 0: derived from epochs
  double epochs = 1;
  double lr = 1e-4;
  double weight_decay = 0.0;
  std::vector<double> betas = {0.9, 0.999};
  double eps = 1e-8;
  std::string schedule = "cosine";  // constant | linear | cosine | step
  int64_t warmup_steps = 0;
  double gamma = 0.85;  // step schedule: lr *= gamma each epoch (llama-recipes)
  double grad_clip = 1.0;  // 0 = off
  uint64_t seed = 42;
  int64_t threads = 0;  // 0 = all cores
  bool activation_checkpointing = false;
  // Refuse, before loading, a run whose memory plan exceeds the memory available.
  bool memory_check = true;
  // "false"; "true": the newest checkpoint in output.dir; a step number (its checkpoint in
  // output.dir); or a checkpoint folder, anywhere.
  std::string resume = "false";
  // [first, last] steps to record as a Chrome trace in output.dir/trace.json; [] = none.
  std::vector<double> profile_steps;
  int64_t log_every = 1;
  int64_t eval_every = 0;  // 0: at checkpoints and the end
};

// LoRA / QLoRA (PEFT's names and llama-recipes' defaults).
struct PeftSection {
  std::string method = "none";  // none | lora | qlora
  int64_t r = 8;
  double alpha = 32;
  double dropout = 0.05;
  std::vector<std::string> target_modules = {"q_proj", "v_proj"};
  std::string base_dtype;  // "" = bf16 (lora; fp32 when train.precision=fp32), nf4 (qlora)
  bool double_quant = false;
  std::string adapter;  // start from this PEFT adapter folder
};

struct EvalSection {
  std::vector<std::string> metrics = {"loss"};
  int64_t max_samples = 200;
  int64_t max_new_tokens = 256;
};

struct OutputSection {
  std::string dir = "runs/lathe";
  int64_t save_every = 0;  // 0: only the final model
  int64_t keep_last = 2;   // checkpoints kept on disk
  std::string save_dtype;  // "" = the training precision; bf16 | fp32
  std::string keep_best;   // eval metric whose best checkpoint is kept ("" = off)
  bool tensorboard = false;  // dir/tensorboard/events.out.tfevents.*
  int64_t dashboard = 0;     // port of the live dashboard served by process 0; 0 = off
  bool overwrite = false;    // a fresh run may clear a run already in dir
};

// Data parallel over processes (mpirun, srun): each process trains on its share of every
// step's rows; gradients, optimizer state and parameters are sharded per strategy.
struct DistSection {
  std::string strategy = "no_shard";
  int64_t shard_group_size = 0;
  double timeout = 600;
  bool overlap = true;
};

struct Config {
  ModelSection model;
  DataSection data;
  TrainSection train;
  PeftSection peft;
  EvalSection eval;
  DistSection dist;
  OutputSection output;
};

// Loads `yaml_path` (may be empty: defaults only) then applies overrides of the form
// "section.key=value" (value parsed as YAML, so lists are "[0.9,0.95]"). Validates enums
// and ranges. Throws lathe::Error naming the key and its origin (file or command line).
Config load_config(const std::string& yaml_path, const std::vector<std::string>& overrides);

// The resolved config as YAML, every key present, in the order above.
std::string config_to_yaml(const Config& cfg);

// All valid dotted keys, e.g. "train.lr" (used for suggestions and docs).
std::vector<std::string> config_keys();

}  // namespace lathe
