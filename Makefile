# The two set-up commands of the README. Both install everything they need (a venv per
# checkout and ROS 2 distribution under ~/.cache/dense_head_pose, models in models/).
.PHONY: demo test env

demo:  ## set up and run the pipeline on the test video (out/)
	bash scripts/demo.sh

test:  ## set up, build the ROS 2 package and run ruff + the tests (ROS_DISTRO=kilted|jazzy)
	bash scripts/test.sh $(PYTEST_ARGS)

env:  ## print the lines that activate this checkout's venv (and ROS 2 build): eval "$(make -s env)"
	@bash -c 'source scripts/env.sh && activation'
