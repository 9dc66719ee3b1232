/* Subcommands of the `instcal` command line tool. Each returns the process
 * exit status (0 success, 1 failure, 2 usage error). */
#ifndef IC_CLI_COMMANDS_H
#define IC_CLI_COMMANDS_H

int cmd_bench(int argc, char **argv);
int cmd_bench_model(int argc, char **argv);
int cmd_segment(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);

#endif
