// Model text on its way to the user's terminal.
#pragma once
#include <string>

namespace dip::cli {

// A piece of generated text as a terminal may show it: the C0 control characters but newline and
// tab, and DEL, left out. A model's text can hold escape sequences, vertical tabs and carriage
// returns (random or hostile ones) that would move the cursor and rewrite what the terminal
// shows. Text written to a pipe or file is left as the model made it.
std::string terminal_text(const std::string& piece);

// Writes a piece of generated text to stdout (through terminal_text when `terminal`) and flushes
// it; false when the reader has gone (EPIPE), which ends the generation.
bool write_generated(const std::string& piece, bool terminal);

}  // namespace dip::cli
