# The two set-up commands of the README. Both install everything they need (into .venv).
.PHONY: demo test

demo:  ## set up and run the pipeline on the test video (out/)
	bash scripts/demo.sh

test:  ## set up, build the ROS 2 package and run ruff + every test
	bash scripts/test.sh
