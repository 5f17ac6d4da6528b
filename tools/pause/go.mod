module github.com/mlkeel/mlkeel/tools/pause

go 1.26.0
