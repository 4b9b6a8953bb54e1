// The one header a program includes to embed dip: everything `dip generate`, `dip perplexity`
// and `dip sweep` do, without the command line.
//
//   auto model = dip::Model::load(dip::resolve_model(""));           // GGUF file or HF folder
//   dip::RunOptions o;                                               // threads, batch,
//   o.sparsity.method = "dip"; o.sparsity.mlp_density = 0.5;         // pruning, and optionally
//   o.flash.image = "m.dipflash"; o.flash.budget = "50%";            // the MLP on flash
//   auto prompt = dip::tokenize(model->vocab(), "Once upon", true, true);
//   dip::Runner run(*model, o, dip::pick_ctx(*model, 0, prompt.size() + 64), 1);
//   run.generate(prompt, {}, [](int32_t, const std::string& piece) { return true; });
//
// Errors are thrown as dip::Error with a one-line message. Progress of long work and notes go
// through util/progress.h's sink (stderr unless replaced). examples/ holds a complete program.
#pragma once

#include "api/conversation.h"     // Conversation: chat turns from one KV cache
#include "api/flash_setup.h"      // FlashOptions, FlashRun, flash_report
#include "api/flash_sweep.h"      // run_flash_sweep
#include "api/model_files.h"      // resolve_model, pick_ctx
#include "api/run.h"              // RunOptions, Runner: generate, score
#include "api/sim_sweep.h"        // SimSweepOptions, run_sim_sweep
#include "api/simulate.h"         // SimulateOptions, simulate_device
#include "api/sparsity_setup.h"   // SparsityOptions
#include "api/sweep.h"            // SweepPlan, plan_sweep, run_accuracy_sweep
#include "model/model.h"          // Model::load
#include "tokenizer/tokenizer.h"  // tokenize, token_to_piece
#include "util/error.h"           // Error
#include "util/progress.h"        // set_progress_sink
