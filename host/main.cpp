#include "cli.hpp"

int main(int argc, char **argv) { return devhost::run_cli(argc, argv); }
